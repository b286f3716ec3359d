// The one `bump`: count tables (errors by code, refusals by reason) that the hot paths fill
// and the metrics read on scrape (common/metrics.ts byLabel). No imports: the per-record
// pipeline uses it without loading prom-client.

/** Increments `key` of a count table (a Map or a plain record), creating it at 0. */
export function bump(counts: Map<string, number> | Record<string, number>, key: string, n = 1): void {
  if (counts instanceof Map) counts.set(key, (counts.get(key) ?? 0) + n);
  else counts[key] = (counts[key] ?? 0) + n;
}
