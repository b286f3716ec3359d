// The one metrics helper of the agent and the enricher: Prometheus counters and gauges that
// read plain numbers at scrape time (collect), so the hot paths only bump numbers and never
// call prom-client. A metric is a name, a help text, its label names and a read function
// that returns samples; `one` and `byLabel` build the usual sample shapes.

import { Counter, Gauge, type Registry } from './prom';

export type Labels = Record<string, string>;
export type Samples = Iterable<readonly [Labels, number]>;

/** A counter whose value is read on scrape (the source only ever grows). */
export function scrapedCounter(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly string[],
  read: () => Samples,
): void {
  new Counter({
    ...config(registry, name, help, labelNames),
    collect() {
      this.reset();
      for (const [labels, v] of read()) this.inc(labels, v);
    },
  });
}

/** A gauge whose value is read on scrape; label sets absent from a read disappear. */
export function scrapedGauge(
  ...[registry, name, help, labelNames, read]: Parameters<typeof scrapedCounter>
): void {
  new Gauge({
    ...config(registry, name, help, labelNames),
    collect() {
      this.reset();
      for (const [labels, v] of read()) this.set(labels, v);
    },
  });
}

function config(registry: Registry, name: string, help: string, labelNames: readonly string[]) {
  return { name, help, labelNames: [...labelNames], registers: [registry] };
}

const NONE: Samples = [];
const NO_LABELS: Labels = {};

/** One unlabelled sample, or none when the source is absent. */
export function one(v: number | undefined | null): Samples {
  return v === undefined || v === null ? NONE : [[NO_LABELS, v]];
}

/** One sample per key of `map`, the key as label `label` (plus `extra` labels). */
export function byLabel(
  map: ReadonlyMap<string, number> | Readonly<Record<string, number>> | undefined,
  label: string,
  extra: Labels = NO_LABELS,
): [Labels, number][] {
  const out: [Labels, number][] = [];
  if (map === undefined) return out;
  const entries = map instanceof Map ? map.entries() : Object.entries(map);
  for (const [k, v] of entries) out.push([{ ...extra, [label]: k }, v]);
  return out;
}
