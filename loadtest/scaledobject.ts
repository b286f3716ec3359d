// From a KEDA ScaledObject (as `helm template` renders it, parsed from YAML) to the options of
// the HPA stand-in (hpa-model.ts): Prometheus triggers with their query and per-pod threshold,
// min/max replica counts, fallback, and the HPA behavior KEDA passes through
// (spec.advanced.horizontalPodAutoscalerConfig.behavior). Only what the stand-in models is
// accepted; anything else is refused by name rather than silently ignored. Plus the instant
// query KEDA's Prometheus scaler sends (/api/v1/query) and the parsing of its answer.

import { BedError } from './bed-errors';
import type { HpaBehavior, HpaModelOptions, PrometheusTrigger } from './hpa-model';

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function bad(field: string, why: string): never {
  throw new BedError('BED_INVALID_ARGUMENT', `ScaledObject ${field}: ${why}`);
}

function num(v: unknown, field: string): number {
  // KEDA takes trigger metadata as strings ("150000"); counts are YAML integers.
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isFinite(n)) bad(field, `expected a number, got ${JSON.stringify(v)}`);
  return n;
}

/** KEDA's defaults: minReplicaCount 0, maxReplicaCount 100, metricType AverageValue, ignoreNullValues true. */
export function hpaOptionsFromScaledObject(
  doc: unknown,
  now: () => number,
  o: { syncPeriodSeconds?: number; tolerance?: number } = {},
): HpaModelOptions {
  if (!isObj(doc) || doc.kind !== 'ScaledObject') bad('kind', 'expected a ScaledObject');
  const spec = doc.spec;
  if (!isObj(spec)) bad('spec', 'missing');
  const min = spec.minReplicaCount === undefined ? 0 : num(spec.minReplicaCount, 'spec.minReplicaCount');
  const max = spec.maxReplicaCount === undefined ? 100 : num(spec.maxReplicaCount, 'spec.maxReplicaCount');
  // Between 1 and N the HPA rules; 0 <-> 1 is KEDA's activation, which the stand-in does not model.
  if (min < 1) bad('spec.minReplicaCount', 'scale to zero (activation) is not modelled; use >= 1');
  const triggers: PrometheusTrigger[] = [];
  if (!Array.isArray(spec.triggers) || spec.triggers.length === 0) bad('spec.triggers', 'at least one');
  spec.triggers.forEach((t: unknown, i: number) => {
    const f = `spec.triggers[${i}]`;
    if (!isObj(t)) bad(f, 'not an object');
    if (t.type !== 'prometheus')
      throw new BedError(
        'BED_UNSUPPORTED',
        `ScaledObject ${f}.type: only prometheus is modelled, got ${t.type}`,
      );
    if ((t.metricType ?? 'AverageValue') !== 'AverageValue')
      throw new BedError('BED_UNSUPPORTED', `ScaledObject ${f}.metricType: only AverageValue is modelled`);
    const md = t.metadata;
    if (!isObj(md)) bad(`${f}.metadata`, 'missing');
    if (typeof md.query !== 'string' || md.query === '') bad(`${f}.metadata.query`, 'missing');
    const ignore = md.ignoreNullValues;
    if (ignore !== undefined && ignore !== 'true' && ignore !== 'false' && typeof ignore !== 'boolean')
      bad(`${f}.metadata.ignoreNullValues`, `expected "true" or "false", got ${JSON.stringify(ignore)}`);
    triggers.push({
      // KEDA names an unnamed trigger's metric s<index>-<type>.
      name: typeof t.name === 'string' && t.name !== '' ? t.name : `s${i}-prometheus`,
      query: md.query,
      target: num(md.threshold, `${f}.metadata.threshold`),
      ignoreNullValues: ignore === undefined ? true : ignore === true || ignore === 'true',
    });
  });
  let fallback: HpaModelOptions['fallback'];
  if (spec.fallback !== undefined) {
    if (!isObj(spec.fallback)) bad('spec.fallback', 'not an object');
    fallback = {
      failureThreshold: num(spec.fallback.failureThreshold, 'spec.fallback.failureThreshold'),
      replicas: num(spec.fallback.replicas, 'spec.fallback.replicas'),
    };
  }
  const adv = spec.advanced;
  const hpaCfg = isObj(adv) ? adv.horizontalPodAutoscalerConfig : undefined;
  const behavior = isObj(hpaCfg) && isObj(hpaCfg.behavior) ? (hpaCfg.behavior as HpaBehavior) : undefined;
  return {
    minReplicas: min,
    maxReplicas: max,
    triggers,
    behavior,
    fallback,
    now,
    syncPeriodSeconds: o.syncPeriodSeconds,
    tolerance: o.tolerance,
  };
}

/** The URL KEDA's Prometheus scaler asks: an instant query at the time of the request. */
export function instantQueryUrl(serverAddress: string, promql: string): string {
  return `${serverAddress.replace(/\/+$/, '')}/api/v1/query?query=${encodeURIComponent(promql)}`;
}

/**
 * The sample values of a /api/v1/query answer: a vector's values (one per series) or a scalar.
 * Anything else (status error, a matrix, bad JSON) throws BED_PROBE_FAILED, which the stand-in
 * counts as a failed query, as KEDA does.
 */
export function parseInstantQuery(status: number, body: string): number[] {
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch {
    throw new BedError('BED_PROBE_FAILED', `prometheus answered ${status} with non-JSON`);
  }
  if (status !== 200 || !isObj(doc) || doc.status !== 'success' || !isObj(doc.data)) {
    const why = isObj(doc) && typeof doc.error === 'string' ? doc.error : `status ${status}`;
    throw new BedError('BED_PROBE_FAILED', `prometheus query failed: ${why}`);
  }
  const { resultType, result } = doc.data;
  const value = (pair: unknown) => (Array.isArray(pair) ? Number(pair[1]) : Number.NaN);
  if (resultType === 'scalar') return [value(result)];
  if (resultType === 'vector' && Array.isArray(result))
    return result.map((s) => value(isObj(s) ? s.value : null));
  throw new BedError('BED_PROBE_FAILED', `prometheus query: unexpected result type ${String(resultType)}`);
}
