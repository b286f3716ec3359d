// A named STAND-IN for the controllers that scale the enrichers in a cluster: the HPA controller
// (kube-controller-manager) together with KEDA's metrics adapter and Prometheus scaler. No API
// server runs here, so the test bed computes the replica count the way they would, from the
// ScaledObject's triggers and the HPA `behavior` that `helm template` renders. Pure code: the
// Prometheus query and the clock are injected; sync() is called once per sync period.
//
// Sources (the documented algorithm, implemented from the docs, not from their code):
// - Kubernetes, "Horizontal Pod Autoscaling" (kubernetes.io/docs/tasks/run-application/
//   horizontal-pod-autoscale/), "Algorithm details": desiredReplicas = ceil(currentReplicas x
//   currentMetricValue / desiredMetricValue); no scaling while the ratio is within the tolerance
//   (0.1 by default); the sync period is --horizontal-pod-autoscaler-sync-period (15 s default).
//   For an AverageValue target the metric is divided by the replica count, which makes
//   ceil(current x (value/current) / target) = ceil(value / target).
//   "Scaling on multiple metrics": a proposal per metric, the largest wins; if a metric cannot be
//   computed and the others suggest a scale-down, scaling is skipped (scale-up still happens).
//   "Configurable scaling behavior": stabilizationWindowSeconds (scale-up: the lowest
//   recommendation of the window, default 0; scale-down: the highest, default 300 s), policies
//   Pods/Percent with periodSeconds, selectPolicy Max (default) / Min / Disabled, and the default
//   behavior (up: 100 % or 4 pods per 15 s, whichever is higher; down: 100 % per 15 s, 300 s).
// - KEDA, ScaledObject specification (keda.sh/docs/latest/reference/scaledobject-spec/):
//   triggers' metricType AverageValue (the default: "queue 20, threshold 5 -> 4 replicas,
//   regardless of the current replica count"); `fallback`: KEDA counts each scaler's consecutive
//   failures; once the count passes failureThreshold it reports target x fallback.replicas, so the
//   HPA computes fallback.replicas; before that the HPA sees a failed metric.
//   Between 1 and N replicas the HPA asks KEDA's adapter every sync period; KEDA's
//   pollingInterval only governs activation from zero, which this model does not cover (min >= 1).
// - KEDA Prometheus scaler (keda.sh/docs/latest/scalers/prometheus/): ignoreNullValues (default
//   true) turns an empty result into 0; false makes it an error. A result with several series is
//   an error.

import { BedError } from './bed-errors';

export interface ScalingPolicy {
  type: 'Pods' | 'Percent';
  value: number;
  periodSeconds: number;
}

export interface ScalingRules {
  stabilizationWindowSeconds?: number;
  selectPolicy?: 'Max' | 'Min' | 'Disabled';
  policies?: ScalingPolicy[];
}

export interface HpaBehavior {
  scaleUp?: ScalingRules;
  scaleDown?: ScalingRules;
}

/** One ScaledObject trigger of type prometheus, metricType AverageValue. */
export interface PrometheusTrigger {
  name: string;
  query: string;
  /** The trigger's `threshold`: the target AverageValue per replica. */
  target: number;
  /** KEDA's ignoreNullValues (default true): an empty result counts as 0 instead of an error. */
  ignoreNullValues?: boolean;
}

export interface Fallback {
  failureThreshold: number;
  replicas: number;
}

export interface HpaModelOptions {
  minReplicas: number;
  maxReplicas: number;
  triggers: PrometheusTrigger[];
  behavior?: HpaBehavior;
  /** Default 15 (kube-controller-manager's --horizontal-pod-autoscaler-sync-period). */
  syncPeriodSeconds?: number;
  /** Default 0.1 (--horizontal-pod-autoscaler-tolerance). */
  tolerance?: number;
  fallback?: Fallback;
  /** Replicas before the first sync (the Deployment's); default minReplicas. */
  initialReplicas?: number;
  /** Milliseconds on any monotonic clock. */
  now: () => number;
}

/** What a query returned: the values of the instant vector's samples, or why it failed. */
export type QueryResult = readonly number[] | Error;

export interface TriggerReading {
  name: string;
  /** The value KEDA hands the HPA (after ignoreNullValues / fallback), null if none. */
  value: number | null;
  error: string | null;
  consecutiveFailures: number;
  fallbackActive: boolean;
  /** This metric's replica proposal, null when the metric is invalid. */
  proposal: number | null;
}

export interface SyncResult {
  at: number;
  /** Spec replicas before this sync. */
  currentReplicas: number;
  /** Pods the proposals were computed for (the scale subresource's status.replicas). */
  statusReplicas: number;
  triggers: TriggerReading[];
  /** Largest proposal of the valid metrics, before behavior; null when scaling was skipped. */
  metricDesired: number | null;
  /** Spec replicas after this sync. */
  desiredReplicas: number;
  reason: string;
}

interface Resolved {
  window: number;
  select: 'Max' | 'Min' | 'Disabled';
  policies: ScalingPolicy[];
}

// Kubernetes' defaults for `behavior` (HPA docs, "Default Behavior").
const DEFAULT_UP: Resolved = {
  window: 0,
  select: 'Max',
  policies: [
    { type: 'Percent', value: 100, periodSeconds: 15 },
    { type: 'Pods', value: 4, periodSeconds: 15 },
  ],
};
const DEFAULT_DOWN: Resolved = {
  window: 300,
  select: 'Max',
  policies: [{ type: 'Percent', value: 100, periodSeconds: 15 }],
};

function resolve(r: ScalingRules | undefined, d: Resolved, field: string): Resolved {
  const out: Resolved = {
    window: r?.stabilizationWindowSeconds ?? d.window,
    select: r?.selectPolicy ?? d.select,
    policies: r?.policies && r.policies.length > 0 ? r.policies : d.policies,
  };
  if (!Number.isInteger(out.window) || out.window < 0 || out.window > 3600)
    invalid(`${field}.stabilizationWindowSeconds: 0..3600, got ${out.window}`);
  for (const p of out.policies) {
    if (!Number.isInteger(p.value) || p.value <= 0) invalid(`${field}.policies value: > 0, got ${p.value}`);
    if (!Number.isInteger(p.periodSeconds) || p.periodSeconds <= 0 || p.periodSeconds > 1800)
      invalid(`${field}.policies periodSeconds: 1..1800, got ${p.periodSeconds}`);
  }
  return out;
}

function invalid(msg: string): never {
  throw new BedError('BED_INVALID_ARGUMENT', `hpa model: ${msg}`);
}

// Metric values travel as Kubernetes quantities in milli-units: KEDA builds them with
// NewMilliQuantity(int64(value * 1000)), so sub-milli fractions are cut off.
const toMilli = (v: number) => Math.trunc(v * 1000);

interface Stamped {
  at: number;
  value: number;
}

export class HpaModel {
  readonly minReplicas: number;
  readonly maxReplicas: number;
  readonly triggers: readonly PrometheusTrigger[];
  readonly syncPeriodSeconds: number;
  readonly tolerance: number;
  readonly fallback: Fallback | null;
  private readonly up: Resolved;
  private readonly down: Resolved;
  private readonly now: () => number;
  private spec: number;
  private readonly failures = new Map<string, number>();
  private recommendations: Stamped[] = [];
  private upEvents: Stamped[] = [];
  private downEvents: Stamped[] = [];
  private lastSync: number | null = null;

  constructor(o: HpaModelOptions) {
    if (!Number.isInteger(o.minReplicas) || o.minReplicas < 1)
      invalid(`minReplicas: >= 1 (scale from zero is KEDA's activation, not modelled), got ${o.minReplicas}`);
    if (!Number.isInteger(o.maxReplicas) || o.maxReplicas < o.minReplicas)
      invalid(`maxReplicas: >= minReplicas, got ${o.maxReplicas}`);
    if (o.triggers.length === 0) invalid('triggers: at least one');
    for (const t of o.triggers)
      if (!(t.target > 0)) invalid(`trigger ${t.name}: target > 0, got ${t.target}`);
    if (new Set(o.triggers.map((t) => t.name)).size !== o.triggers.length)
      invalid('trigger names must be unique');
    this.minReplicas = o.minReplicas;
    this.maxReplicas = o.maxReplicas;
    this.triggers = o.triggers;
    this.syncPeriodSeconds = o.syncPeriodSeconds ?? 15;
    if (!(this.syncPeriodSeconds > 0)) invalid(`syncPeriodSeconds: > 0, got ${this.syncPeriodSeconds}`);
    this.tolerance = o.tolerance ?? 0.1;
    if (!(this.tolerance >= 0)) invalid(`tolerance: >= 0, got ${this.tolerance}`);
    if (o.fallback) {
      if (!Number.isInteger(o.fallback.failureThreshold) || o.fallback.failureThreshold < 0)
        invalid(`fallback.failureThreshold: >= 0, got ${o.fallback.failureThreshold}`);
      if (!Number.isInteger(o.fallback.replicas) || o.fallback.replicas < 1)
        invalid(`fallback.replicas: >= 1, got ${o.fallback.replicas}`);
    }
    this.fallback = o.fallback ?? null;
    this.up = resolve(o.behavior?.scaleUp, DEFAULT_UP, 'behavior.scaleUp');
    this.down = resolve(o.behavior?.scaleDown, DEFAULT_DOWN, 'behavior.scaleDown');
    this.now = o.now;
    this.spec = o.initialReplicas ?? o.minReplicas;
  }

  /** The replica count the HPA last set (the Deployment's spec.replicas). */
  get replicas(): number {
    return this.spec;
  }

  /** When the next sync is due (ms, on the injected clock); now if none ran yet. */
  dueAt(): number {
    return this.lastSync === null ? this.now() : this.lastSync + this.syncPeriodSeconds * 1000;
  }

  /** One sync: queries every trigger (in parallel, as KEDA's adapter does) and reconciles. */
  async sync(
    query: (promql: string) => Promise<readonly number[]>,
    statusReplicas?: number,
  ): Promise<SyncResult> {
    const results = new Map<string, QueryResult>();
    await Promise.all(
      this.triggers.map(async (t) => {
        try {
          results.set(t.name, await query(t.query));
        } catch (err) {
          results.set(t.name, err instanceof Error ? err : new Error(String(err)));
        }
      }),
    );
    return this.syncWith(results, statusReplicas);
  }

  /** One sync from query results already in hand (pure; what the unit tests drive). */
  syncWith(results: ReadonlyMap<string, QueryResult>, statusReplicas = this.spec): SyncResult {
    const at = this.now();
    this.lastSync = at;
    const current = this.spec;
    const readings = this.triggers.map((t) => this.read(t, results.get(t.name), statusReplicas));
    const done = (desired: number, metricDesired: number | null, reason: string): SyncResult => {
      if (desired !== current) this.record(current, desired, at);
      this.spec = desired;
      return {
        at,
        currentReplicas: current,
        statusReplicas,
        triggers: readings,
        metricDesired,
        desiredReplicas: desired,
        reason,
      };
    };
    // The HPA first brings a count outside [min, max] back inside, without looking at metrics.
    if (current > this.maxReplicas) return done(this.maxReplicas, null, 'current above maxReplicas');
    if (current < this.minReplicas) return done(this.minReplicas, null, 'current below minReplicas');
    const proposals = readings.map((r) => r.proposal).filter((p): p is number => p !== null);
    const invalidCount = readings.length - proposals.length;
    const best = proposals.length > 0 ? Math.max(...proposals) : 0;
    if (invalidCount === readings.length) return done(current, null, 'no metric available: not scaling');
    if (invalidCount > 0 && best < current)
      return done(current, null, 'a metric is unavailable and the others suggest scaling down: not scaling');
    const stabilized = this.stabilize(best, current, at);
    const desired = this.limitRate(stabilized, current, at);
    let reason = `metrics propose ${best}`;
    if (stabilized !== best) reason += `, stabilized to ${stabilized}`;
    if (desired !== stabilized) reason += `, limited to ${desired} by policies/min/max`;
    return done(desired, best, reason);
  }

  /** The trigger's value as KEDA serves it, and the HPA's proposal from it. */
  private read(t: PrometheusTrigger, r: QueryResult | undefined, statusReplicas: number): TriggerReading {
    let value: number | null = null;
    let error: string | null = null;
    if (r === undefined) error = 'no query result';
    else if (r instanceof Error) error = r.message;
    else if (r.length > 1) error = `query returned ${r.length} series, expected one`;
    else {
      const v = r.length === 0 ? Number.NaN : r[0]!;
      if (Number.isFinite(v)) value = v;
      else if (t.ignoreNullValues ?? true) value = 0;
      else error = r.length === 0 ? 'empty result and ignoreNullValues is false' : `value ${v}`;
    }
    let failures = 0;
    let fallbackActive = false;
    if (error === null) this.failures.set(t.name, 0);
    else {
      failures = (this.failures.get(t.name) ?? 0) + 1;
      this.failures.set(t.name, failures);
      if (this.fallback && failures > this.fallback.failureThreshold) {
        fallbackActive = true;
        value = t.target * this.fallback.replicas;
      }
    }
    let proposal: number | null = null;
    if (value !== null) {
      const usage = toMilli(value);
      const target = Math.round(t.target * 1000);
      proposal = statusReplicas;
      const ratio = usage / (target * statusReplicas);
      if (statusReplicas === 0 || Math.abs(1 - ratio) > this.tolerance) proposal = Math.ceil(usage / target);
    }
    return {
      name: t.name,
      value,
      error,
      consecutiveFailures: failures,
      fallbackActive,
      proposal,
    };
  }

  /**
   * Stabilization: a scale-up goes no higher than the lowest recommendation of the scale-up
   * window, a scale-down no lower than the highest of the scale-down window (the current one
   * included); then the raw recommendation joins the history.
   */
  private stabilize(recommendation: number, current: number, at: number): number {
    const upCut = at - this.up.window * 1000;
    const downCut = at - this.down.window * 1000;
    let upLimit = recommendation;
    let downLimit = recommendation;
    for (const r of this.recommendations) {
      if (r.at > upCut) upLimit = Math.min(upLimit, r.value);
      if (r.at > downCut) downLimit = Math.max(downLimit, r.value);
    }
    let out = current;
    if (out < upLimit) out = upLimit;
    if (out > downLimit) out = downLimit;
    const keep = Math.min(upCut, downCut);
    this.recommendations = this.recommendations.filter((r) => r.at > keep);
    this.recommendations.push({ at, value: recommendation });
    return out;
  }

  /** Pods added (or removed) by the HPA within the last `periodSeconds`. */
  private changedWithin(events: readonly Stamped[], periodSeconds: number, at: number): number {
    const cut = at - periodSeconds * 1000;
    let sum = 0;
    for (const e of events) if (e.at > cut) sum += e.value;
    return sum;
  }

  /** Scaling policies (relative to the count at the start of each policy's period), then min/max. */
  private limitRate(desired: number, current: number, at: number): number {
    if (desired > current) {
      let limit: number;
      if (this.up.select === 'Disabled') limit = current;
      else {
        const proposals = this.up.policies.map((p) => {
          const start =
            current -
            this.changedWithin(this.upEvents, p.periodSeconds, at) +
            this.changedWithin(this.downEvents, p.periodSeconds, at);
          // Percent rounds up so that a small deployment can always grow.
          return p.type === 'Pods' ? start + p.value : Math.ceil(start * (1 + p.value / 100));
        });
        limit = this.up.select === 'Min' ? Math.min(...proposals) : Math.max(...proposals);
        if (limit < current) limit = current;
      }
      return Math.min(desired, limit, this.maxReplicas);
    }
    if (desired < current) {
      let limit: number;
      if (this.down.select === 'Disabled') limit = current;
      else {
        const proposals = this.down.policies.map((p) => {
          const start =
            current -
            this.changedWithin(this.upEvents, p.periodSeconds, at) +
            this.changedWithin(this.downEvents, p.periodSeconds, at);
          return p.type === 'Pods' ? start - p.value : Math.trunc(start * (1 - p.value / 100));
        });
        // Max picks the policy allowing the biggest change, i.e. the lowest count when going down.
        limit = this.down.select === 'Min' ? Math.max(...proposals) : Math.min(...proposals);
        if (limit > current) limit = current;
      }
      return Math.max(desired, limit, this.minReplicas);
    }
    return desired;
  }

  private record(from: number, to: number, at: number): void {
    const longest = Math.max(
      ...this.up.policies.map((p) => p.periodSeconds),
      ...this.down.policies.map((p) => p.periodSeconds),
    );
    const cut = at - longest * 1000;
    this.upEvents = this.upEvents.filter((e) => e.at > cut);
    this.downEvents = this.downEvents.filter((e) => e.at > cut);
    if (to > from) this.upEvents.push({ at, value: to - from });
    else this.downEvents.push({ at, value: from - to });
  }
}
