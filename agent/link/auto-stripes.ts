// --active-connections auto: how many stripes, from the agent's own evidence only. Pure:
// the client samples its connections and buffer, and asks decide() once per period.
//
// Grow by one when, for GROW_PERIODS periods in a row, the backlog did not shrink (by more
// than 10 %: pinned at the buffer bound it jitters by a batch) while
// every active connection's window was full (the enrichers we reach take no more, and
// batches wait): another connection to another pod adds capacity. Shrink by one when, for
// SHRINK_PERIODS in a row, nothing waited and the in-flight load would fit in one stripe
// fewer at half occupancy, and the mean ack latency is not well above the one seen when we
// last grew (slow acks mean the pods, not our window, are the limit). Hysteresis: grow needs
// full windows, shrink needs half-empty ones; after any change COOLDOWN_PERIODS pass
// before the next; at most MAX_CHANGES_PER_WINDOW changes per CHANGE_WINDOW_MS.

/** Consecutive periods of pressure before one more stripe. */
export const GROW_PERIODS = 2;
/** Consecutive idle periods before one stripe fewer. */
export const SHRINK_PERIODS = 6;
/** Periods after a change during which no other change is made (its effect shows first). */
export const COOLDOWN_PERIODS = 2;
/** A window counts as saturated at this occupancy (sampled). */
export const SATURATED_OCCUPANCY = 0.9;
/** Share of samples in a period in which every window must be saturated, for pressure. */
export const SATURATED_SHARE = 0.8;
/**
 * The backlog "did not shrink" when it ended the period at this share of its start or more: a
 * backlog pinned at the buffer bound moves by a batch either way between samples.
 */
export const BACKLOG_HOLDING = 0.9;
/** Shrink when the load fits in N-1 stripes at this occupancy. */
export const SHRINK_OCCUPANCY = 0.5;
/** Shrink is held while the mean ack latency is above this multiple of the one at the last grow. */
export const LATENCY_MARGIN = 1.5;
export const CHANGE_WINDOW_MS = 10 * 60_000;
export const MAX_CHANGES_PER_WINDOW = 6;

/** One period's evidence, gathered by the client. */
export interface StripeEvidence {
  /** Batches queued (not in flight) at the start and the end of the period. */
  backlogStart: number;
  backlogEnd: number;
  /** Share of samples in which every active window was ≥ SATURATED_OCCUPANCY full. */
  saturatedShare: number;
  /** Mean of (batches in flight) / (window) over samples and active stripes. */
  occupancy: number;
  /** Mean ack latency over the period in seconds; NaN when nothing was acknowledged. */
  ackLatency: number;
}

export class StripeController {
  private pressure = 0;
  private idle = 0;
  private cooldown = 0;
  private changes: number[] = [];
  private latencyAtGrow = Number.POSITIVE_INFINITY;

  constructor(
    readonly max: number,
    private n = 1,
  ) {}

  get current(): number {
    return this.n;
  }

  /** The stripe count for the next period (the current one, one more, or one fewer). */
  decide(e: StripeEvidence, now: number): number {
    const n = this.n;
    const holding = e.backlogEnd > 0 && e.backlogEnd >= BACKLOG_HOLDING * e.backlogStart;
    const saturated = e.saturatedShare >= SATURATED_SHARE && holding;
    const quiet =
      e.backlogEnd === 0 &&
      e.occupancy * n <= (n - 1) * SHRINK_OCCUPANCY &&
      !(e.ackLatency > LATENCY_MARGIN * this.latencyAtGrow);
    this.pressure = saturated ? this.pressure + 1 : 0;
    this.idle = quiet ? this.idle + 1 : 0;
    if (this.cooldown > 0) {
      this.cooldown--;
      return n;
    }
    this.changes = this.changes.filter((t) => now - t < CHANGE_WINDOW_MS);
    if (this.changes.length >= MAX_CHANGES_PER_WINDOW) return n;
    if (this.pressure >= GROW_PERIODS && n < this.max) {
      this.latencyAtGrow = Number.isNaN(e.ackLatency) ? this.latencyAtGrow : e.ackLatency;
      return this.change(n + 1, now);
    }
    if (this.idle >= SHRINK_PERIODS && n > 1) {
      if (n - 1 === 1) this.latencyAtGrow = Number.POSITIVE_INFINITY;
      return this.change(n - 1, now);
    }
    return n;
  }

  private change(to: number, now: number): number {
    this.n = to;
    this.pressure = 0;
    this.idle = 0;
    this.cooldown = COOLDOWN_PERIODS;
    this.changes.push(now);
    return to;
  }
}
