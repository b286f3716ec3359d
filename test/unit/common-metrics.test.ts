// common/metrics (counters and gauges read from plain numbers on scrape) and common/counts (bump).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Registry } from 'prom-client';
import { bump } from '../../common/counts';
import { byLabel, one, type Samples, scrapedCounter, scrapedGauge } from '../../common/metrics';

async function text(reg: Registry): Promise<string[]> {
  return (await reg.metrics()).split('\n').filter((l) => l !== '' && !l.startsWith('#'));
}

describe('scraped metrics', () => {
  test('a counter shows the source value at each scrape', async () => {
    const reg = new Registry();
    let n = 3;
    scrapedCounter(reg, 'demo_total', 'demo', [], () => one(n));
    assert.deepEqual(await text(reg), ['demo_total 3']);
    n = 10;
    assert.deepEqual(await text(reg), ['demo_total 10']);
  });

  test('a labelled gauge drops label sets its source no longer has', async () => {
    const reg = new Registry();
    let src: Record<string, number> = { a: 1, b: 2 };
    scrapedGauge(reg, 'demo', 'demo', ['k'], () => byLabel(src, 'k'));
    assert.deepEqual(await text(reg), ['demo{k="a"} 1', 'demo{k="b"} 2']);
    src = { b: 5 };
    assert.deepEqual(await text(reg), ['demo{k="b"} 5']);
  });

  test('byLabel reads Maps and records, with extra labels', () => {
    const expected: Samples = [[{ stage: 's', reason: 'x' }, 2]];
    assert.deepEqual(byLabel(new Map([['x', 2]]), 'reason', { stage: 's' }), expected);
    assert.deepEqual(byLabel({ x: 2 }, 'reason', { stage: 's' }), expected);
    assert.deepEqual(byLabel(undefined, 'reason'), []);
    assert.deepEqual([...one(null)], []);
  });
});

test('bump counts into Maps and records, from zero', () => {
  const m = new Map<string, number>();
  const r: Record<string, number> = {};
  bump(m, 'a');
  bump(m, 'a', 4);
  bump(r, 'b');
  bump(r, 'b');
  assert.deepEqual([...m], [['a', 5]]);
  assert.deepEqual(r, { b: 2 });
});
