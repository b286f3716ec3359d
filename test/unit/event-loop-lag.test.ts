// The event-loop lag metrics (common/prom.ts): the histogram's figures are the delay alone,
// without the sampling period that Node's monitorEventLoopDelay records with it, and a scrape
// window without a sample leaves them as they were. prom-client's own version is the contrast.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createRegistry, EVENT_LOOP_SAMPLE_MS } from '../../common/ops-server';
import { collectDefaultMetrics, Registry } from '../../common/prom';

const PERIOD_MS = 20;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
function busy(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end);
}

async function values(registry: Registry, prefix: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const m of await registry.getMetricsAsJSON()) {
    if (!m.name.startsWith(`${prefix}nodejs_eventloop_lag`)) continue;
    out.set(m.name.slice(prefix.length), (m.values[0]?.value as number | undefined) ?? Number.NaN);
  }
  return out;
}

test('the lag figures leave out the sampling period and show a stall as its length', async () => {
  const registry = new Registry();
  const prefix = 'lagtest_';
  collectDefaultMetrics(registry, prefix, PERIOD_MS);
  await values(registry, prefix); // restarts the histogram
  await sleep(300);
  const idle = await values(registry, prefix);
  assert.equal(idle.size, 8, [...idle.keys()].join(', '));
  // prom-client reports the period itself here (~0.020 s): every tick is >= 20 ms apart.
  assert.ok(
    idle.get('nodejs_eventloop_lag_min_seconds')! < 0.01,
    `idle min ${idle.get('nodejs_eventloop_lag_min_seconds')}`,
  );
  for (const [name, v] of idle) assert.ok(Number.isFinite(v) && v >= 0, `${name} = ${v}`);

  await sleep(50);
  busy(250);
  await sleep(60);
  const stalled = await values(registry, prefix);
  const max = stalled.get('nodejs_eventloop_lag_max_seconds')!;
  assert.ok(max >= 0.2 && max < 0.3, `a 250 ms stall: max ${max}`);
  assert.ok(stalled.get('nodejs_eventloop_lag_min_seconds')! < max);

  // Scraped again at once: no sample in between, the figures stay (prom-client: min 2^63 ns, mean NaN).
  const again = await values(registry, prefix);
  assert.equal(again.get('nodejs_eventloop_lag_max_seconds'), max);
  for (const [name, v] of again) assert.ok(Number.isFinite(v) && v < 1, `${name} = ${v}`);
});

test('the agent samples its loop once a second, the enricher every 20 ms', () => {
  assert.equal(EVENT_LOOP_SAMPLE_MS.agent, 1000);
  assert.equal(EVENT_LOOP_SAMPLE_MS.enricher, 20);
  // Both registries carry the same eight lag families.
  for (const c of ['agent', 'enricher'] as const) {
    const names = createRegistry(c)
      .getMetricsAsArray()
      .map((m) => m.name)
      .filter((n) => n.includes('eventloop_lag'));
    assert.equal(names.length, 8, `${c}: ${names.join(', ')}`);
  }
});
