// --active-connections auto: how many stripes, from the agent's own evidence only. Pure:
// the client samples its connections and buffer, and asks decide() once per period
// (AUTO_PERIOD_MS in client.ts, 2 s).
//
// Pressure: the backlog did not shrink (by more than 10 %: pinned at the buffer bound it
// jitters by a batch) while every active connection's window was full (the enrichers we reach
// take no more, and batches wait): another connection to another pod adds capacity.
// Grow by one after GROW_PERIODS periods of pressure in a row. A grow is followed by
// GROW_COOLDOWN_PERIODS whose evidence is ignored (the new connection dials and fills its
// window); if the very next period still shows pressure, the step is multiplicative: N goes to
// ceil(N × GROW_FACTOR) (1 → 2 → 3 → 5 → 8), capped by the maximum, like a slow start. A period
// without pressure ends the streak (the next grow is by one again, after GROW_PERIODS).
// Shrink stays slow: by one, after SHRINK_PERIODS idle periods in a row (nothing waited, the
// in-flight load would fit in one stripe fewer at half occupancy, and the mean ack latency is
// not well above the one seen when we last grew: slow acks mean the pods, not our window, are
// the limit), then SHRINK_COOLDOWN_PERIODS. Hysteresis: grow needs full windows, shrink needs
// half-empty ones. At most MAX_CHANGES_PER_WINDOW changes per CHANGE_WINDOW_MS.

/** Consecutive periods of pressure before the first stripe more (then the streak rule). */
export const GROW_PERIODS = 2;
/** Growth factor while pressure persists right after a grow (rounded up, at least +1). */
export const GROW_FACTOR = 1.5;
/** Periods ignored after a grow (the new connection's dial and first window). */
export const GROW_COOLDOWN_PERIODS = 1;
/** Consecutive idle periods before one stripe fewer (30 s at the 2 s period). */
export const SHRINK_PERIODS = 15;
/** Periods ignored after a shrink (10 s at the 2 s period). */
export const SHRINK_COOLDOWN_PERIODS = 5;
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

/** The stripe count after a grow from `n`: +1, or ×GROW_FACTOR (rounded up) in a streak; ≤ max. */
export function grownCount(n: number, streak: boolean, max: number): number {
  const step = streak ? Math.max(n + 1, Math.ceil(n * GROW_FACTOR)) : n + 1;
  return Math.min(max, step);
}

export class StripeController {
  private pressure = 0;
  private idle = 0;
  private cooldown = 0;
  /** The last change was a grow and no period since has lacked pressure. */
  private streak = false;
  private changes: number[] = [];
  private latencyAtGrow = Number.POSITIVE_INFINITY;

  constructor(
    readonly max: number,
    private n = 1,
  ) {}

  get current(): number {
    return this.n;
  }

  /** The stripe count for the next period (the current one, more, or one fewer). */
  decide(e: StripeEvidence, now: number): number {
    const n = this.n;
    if (this.cooldown > 0) {
      // The change's own transient (dials, windows filling or draining): not evidence.
      this.cooldown--;
      return n;
    }
    const holding = e.backlogEnd > 0 && e.backlogEnd >= BACKLOG_HOLDING * e.backlogStart;
    const saturated = e.saturatedShare >= SATURATED_SHARE && holding;
    const quiet =
      e.backlogEnd === 0 &&
      e.occupancy * n <= (n - 1) * SHRINK_OCCUPANCY &&
      !(e.ackLatency > LATENCY_MARGIN * this.latencyAtGrow);
    this.pressure = saturated ? this.pressure + 1 : 0;
    this.idle = quiet ? this.idle + 1 : 0;
    if (!saturated) this.streak = false;
    this.changes = this.changes.filter((t) => now - t < CHANGE_WINDOW_MS);
    if (this.changes.length >= MAX_CHANGES_PER_WINDOW) return n;
    if (n < this.max && (this.pressure >= GROW_PERIODS || (this.streak && this.pressure >= 1))) {
      this.latencyAtGrow = Number.isNaN(e.ackLatency) ? this.latencyAtGrow : e.ackLatency;
      const to = grownCount(n, this.streak, this.max);
      this.streak = true;
      return this.change(to, now, GROW_COOLDOWN_PERIODS);
    }
    if (this.idle >= SHRINK_PERIODS && n > 1) {
      if (n - 1 === 1) this.latencyAtGrow = Number.POSITIVE_INFINITY;
      this.streak = false;
      return this.change(n - 1, now, SHRINK_COOLDOWN_PERIODS);
    }
    return n;
  }

  private change(to: number, now: number, cooldown: number): number {
    this.n = to;
    this.pressure = 0;
    this.idle = 0;
    this.cooldown = cooldown;
    this.changes.push(now);
    return to;
  }
}
