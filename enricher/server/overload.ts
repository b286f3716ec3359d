// Drain on overload (LINK.md "Lifecycle" 6, issue 7 step 2): an enricher that stays saturated
// asks a few of its agents to move, with the link's own Drain (reason "overload"); each agent
// treats it as a switch (make-before-break, its window still acknowledged here).
//
// Pure: the link server calls tick() about once a second with the time, the main event loop's
// utilisation since the previous tick (node:perf_hooks ELU; under a CPU limit a saturated pod
// sits at ~1) and the connections carrying traffic; tick() answers which ones to drain.
//
// Hysteresis: OVERLOADED once the utilisation averaged over the last `enterMs` is at or above
// `high`; back to NORMAL once its mean over the last `leaveMs` is below `low` (a mean, not every
// tick: a saturated pod under a CFS quota reads 0.8-0.95 from second to second). After a change
// the next one needs a whole window of its own. Rate limit: while overloaded, one drain round
// every `intervalMs`, each draining at most ceil(`fraction` x carrying connections), never an
// agent asked within `cooldownMs` (by agent id: a drained agent's next connection is a new
// one). So a fleet that is saturated everywhere moves a bounded trickle of agents, never all
// of them at once, and no agent is bounced around.

/** Defaults and ranges (the CLI takes them from here; seconds there, milliseconds here). */
export const OVERLOAD_DEFAULTS = {
  enabled: true,
  high: 0.85,
  low: 0.7,
  enterMs: 10_000,
  leaveMs: 10_000,
  fraction: 0.25,
  intervalMs: 5_000,
  // Short enough that agents asked while every pod was saturated (before a scale-up lands) can
  // be asked again soon after it does; long enough that no agent is bounced from pod to pod.
  cooldownMs: 20_000,
  cpuLimitMillicores: 0,
} as const;

export const OVERLOAD_LIMITS = {
  high: { min: 0.05, max: 1 },
  low: { min: 0, max: 1 },
  enterMs: { min: 1000, max: 3_600_000 },
  leaveMs: { min: 1000, max: 3_600_000 },
  fraction: { min: 0.01, max: 1 },
  intervalMs: { min: 1000, max: 3_600_000 },
  cooldownMs: { min: 0, max: 86_400_000 },
  cpuLimitMillicores: { min: 0, max: 10_000_000 },
} as const;

export interface OverloadOptions {
  /** false: the state and its metrics are kept, no agent is asked to move. */
  enabled: boolean;
  /** Mean event-loop utilisation over enterMs at or above which the pod is overloaded. */
  high: number;
  /** Mean utilisation over leaveMs below which it no longer is. */
  low: number;
  enterMs: number;
  leaveMs: number;
  /** Share of the carrying connections asked to move per round (rounded up). */
  fraction: number;
  intervalMs: number;
  cooldownMs: number;
  /**
   * The pod's CPU limit (Kubernetes: the Downward API's limits.cpu in millicores); 0 = none
   * known. Under a CFS quota a saturated process waits throttled, often inside epoll, so its
   * event loop reads only 0.5-0.8 busy: the link server then takes the larger of the
   * utilisation and CPU-seconds used per second / this limit.
   */
  cpuLimitMillicores: number;
}

/** A connection that may be asked to move: an agent past its handshake that sent batches lately. */
export interface OverloadCandidate {
  agentId: string;
  /** Batch bytes received since the previous tick (the heaviest are asked first). */
  recentBytes: number;
}

export class OverloadOptionError extends Error {
  override readonly name = 'OverloadOptionError';
  readonly code = 'OVERLOAD_INVALID_OPTION';
}

/** Fills defaults and checks ranges; the message names the field. */
export function resolveOverloadOptions(o: Partial<OverloadOptions> = {}): OverloadOptions {
  const r = { ...OVERLOAD_DEFAULTS, ...o } as OverloadOptions;
  if (typeof r.enabled !== 'boolean') throw new OverloadOptionError('overload: enabled must be a boolean');
  for (const [k, { min, max }] of Object.entries(OVERLOAD_LIMITS)) {
    const v = r[k as keyof typeof OVERLOAD_LIMITS];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max)
      throw new OverloadOptionError(`overload: ${k} must be a number in [${min}, ${max}], got ${v}`);
  }
  if (r.low > r.high)
    throw new OverloadOptionError(`overload: low (${r.low}) must not exceed high (${r.high})`);
  return r;
}

export type OverloadState = 'normal' | 'overloaded';

export class OverloadController {
  state: OverloadState = 'normal';
  /** Milliseconds spent overloaded (a metric). */
  overloadedMs = 0;
  /** Times the state went normal -> overloaded. */
  episodes = 0;
  /** Drains asked for because of overload. */
  drainsRequested = 0;
  /** Utilisation of the last tick, for the gauge. */
  utilisation = 0;
  private readonly o: OverloadOptions;
  private lastTick: number | null = null;
  /** Recent ticks: when, the interval each measured, its utilisation. */
  private readonly window: { at: number; dt: number; u: number }[] = [];
  private nextRoundAt = 0;
  /** agent id -> when it was last asked to move. */
  private readonly asked = new Map<string, number>();

  constructor(o: Partial<OverloadOptions> = {}) {
    this.o = resolveOverloadOptions(o);
  }

  get options(): Readonly<OverloadOptions> {
    return this.o;
  }

  /**
   * One observation: `utilisation` of the event loop since the previous tick (0..1), and
   * the connections carrying traffic. Returns the ones to drain now (empty when disabled).
   */
  tick(now: number, utilisation: number, carrying: readonly OverloadCandidate[]): OverloadCandidate[] {
    const o = this.o;
    const dt = this.lastTick === null ? 0 : Math.max(0, now - this.lastTick);
    this.lastTick = now;
    this.utilisation = utilisation;
    if (this.state === 'overloaded') this.overloadedMs += dt;
    if (dt > 0) this.window.push({ at: now, dt, u: utilisation });
    const keep = Math.max(o.enterMs, o.leaveMs);
    // Drop ticks that ended a whole window ago (their start may be older: ticks come late under load).
    while (this.window.length > 0 && now - this.window[0]!.at >= keep) this.window.shift();
    const span = this.state === 'normal' ? o.enterMs : o.leaveMs;
    const mean = this.meanOver(now, span);
    if (mean !== null && (this.state === 'normal' ? mean >= o.high : mean < o.low)) {
      this.state = this.state === 'normal' ? 'overloaded' : 'normal';
      // The next decision needs a whole window of its own.
      this.window.length = 0;
      if (this.state === 'overloaded') {
        this.episodes++;
        this.nextRoundAt = now;
      }
    }
    for (const [id, at] of this.asked) if (now - at >= o.cooldownMs) this.asked.delete(id);
    if (!o.enabled || this.state !== 'overloaded' || now < this.nextRoundAt) return [];
    this.nextRoundAt = now + o.intervalMs;
    const quota = Math.ceil(o.fraction * carrying.length);
    const eligible = carrying
      .filter((c) => !this.asked.has(c.agentId))
      .sort((a, b) => b.recentBytes - a.recentBytes);
    const chosen: OverloadCandidate[] = [];
    for (const c of eligible) {
      if (chosen.length >= quota) break;
      // One agent may hold several connections here (stripes): ask it once per round.
      if (chosen.some((x) => x.agentId === c.agentId)) continue;
      chosen.push(c);
      this.asked.set(c.agentId, now);
    }
    this.drainsRequested += chosen.length;
    return chosen;
  }

  /** Time-weighted mean utilisation over the last `span` ms; null until ticks cover it. */
  private meanOver(now: number, span: number): number | null {
    let covered = 0;
    let sum = 0;
    for (let i = this.window.length - 1; i >= 0 && covered < span; i--) {
      const w = this.window[i]!;
      if (now - w.at >= span) break;
      covered += w.dt;
      sum += w.u * w.dt;
    }
    return covered >= span - 1 ? sum / covered : null;
  }
}
