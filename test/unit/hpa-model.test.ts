// The HPA + KEDA stand-in (loadtest/hpa-model.ts) against the worked examples of the documents
// it implements: Kubernetes' "Horizontal Pod Autoscaling" page (algorithm, tolerance, multiple
// metrics, stabilization, scaling policies, default behavior) and KEDA's ScaledObject spec
// (AverageValue, fallback) and Prometheus scaler (ignoreNullValues). Pure: a fake clock, query
// results handed in, no sockets.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BedError } from '../../loadtest/bed-errors';
import { HpaModel, type HpaModelOptions, type QueryResult } from '../../loadtest/hpa-model';

/** A model on a fake clock starting at 0 ms, plus helpers to advance it and sync. */
function model(o: Omit<HpaModelOptions, 'now'>) {
  let t = 0;
  const m = new HpaModel({ ...o, now: () => t });
  return {
    m,
    /** Advances the clock to `sec` seconds and syncs with one result per trigger name. */
    at(sec: number, results: Record<string, QueryResult>, status?: number) {
      t = sec * 1000;
      return m.syncWith(new Map(Object.entries(results)), status);
    },
  };
}

const one = (target: number, name = 'load') => ({ name, query: `q_${name}`, target });
/** No stabilization, no rate limit: the bare algorithm. */
const free = {
  scaleUp: {
    stabilizationWindowSeconds: 0,
    policies: [{ type: 'Percent' as const, value: 1000, periodSeconds: 1 }],
  },
  scaleDown: {
    stabilizationWindowSeconds: 0,
    policies: [{ type: 'Percent' as const, value: 100, periodSeconds: 1 }],
  },
};

test('algorithm: a per-pod average of 200m against a target of 100m doubles the replicas, 50m halves them', () => {
  // HPA docs: "if the current metric value is 200m, and the desired value is 100m, the number of
  // replicas will be doubled ... If the current value is instead 50m, you'll halve".
  // AverageValue: the metric is the total; per pod it is total / replicas.
  const a = model({
    minReplicas: 1,
    maxReplicas: 20,
    triggers: [one(0.1)],
    behavior: free,
    initialReplicas: 4,
  });
  assert.equal(a.at(0, { load: [0.2 * 4] }).desiredReplicas, 8);
  const b = model({
    minReplicas: 1,
    maxReplicas: 20,
    triggers: [one(0.1)],
    behavior: free,
    initialReplicas: 4,
  });
  assert.equal(b.at(0, { load: [0.05 * 4] }).desiredReplicas, 2);
});

test('KEDA AverageValue: queue 20, threshold 5 -> 4 replicas regardless of the current count', () => {
  for (const current of [1, 3, 10]) {
    const a = model({
      minReplicas: 1,
      maxReplicas: 20,
      triggers: [one(5)],
      behavior: free,
      initialReplicas: current,
    });
    assert.equal(a.at(0, { load: [20] }).desiredReplicas, 4, `from ${current}`);
  }
});

test('desiredReplicas rounds up: 2.1 pods worth of load needs 3', () => {
  const a = model({
    minReplicas: 1,
    maxReplicas: 20,
    triggers: [one(100_000)],
    behavior: free,
    initialReplicas: 1,
  });
  assert.equal(a.at(0, { load: [210_000] }).desiredReplicas, 3);
});

test('tolerance: within 10 % of the target nothing changes; beyond it the count moves', () => {
  // 4 pods, target 100 each: 439 (ratio 1.0975) stays, 441 -> ceil(4.41) = 5. Exactly 440 scales:
  // |1 - 1.1| is 0.10000000000000009 in float64, above 0.1 (the HPA computes it the same way).
  const a = model({
    minReplicas: 1,
    maxReplicas: 20,
    triggers: [one(100)],
    behavior: free,
    initialReplicas: 4,
  });
  assert.equal(a.at(0, { load: [439] }).desiredReplicas, 4);
  assert.equal(a.at(15, { load: [441] }).desiredReplicas, 5);
  const b = model({
    minReplicas: 1,
    maxReplicas: 20,
    triggers: [one(100)],
    behavior: free,
    initialReplicas: 10,
  });
  assert.equal(b.at(0, { load: [900] }).desiredReplicas, 10, 'ratio 0.90 is within tolerance');
  assert.equal(b.at(15, { load: [899] }).desiredReplicas, 9, 'ratio 0.899 is not');
  const strict = model({
    minReplicas: 1,
    maxReplicas: 20,
    triggers: [one(100)],
    behavior: free,
    initialReplicas: 4,
    tolerance: 0,
  });
  assert.equal(strict.at(0, { load: [401] }).desiredReplicas, 5, 'tolerance 0 reacts to any change');
});

test('the ratio is taken against the pods that exist (status.replicas), not the spec', () => {
  // spec 6 but only 3 pods exist yet: 320 / (100 x 3) = 1.07 is within tolerance -> propose 3 pods
  // (against the spec it would be 0.53 -> 4), held at 6 by the scale-down stabilization (the 6
  // recommended at t=0 is in the default 300 s window).
  const a = model({ minReplicas: 1, maxReplicas: 20, triggers: [one(100)], initialReplicas: 6 });
  assert.equal(a.at(0, { load: [600] }).desiredReplicas, 6);
  const r = a.at(15, { load: [320] }, 3);
  assert.equal(r.triggers[0]!.proposal, 3);
  assert.equal(r.desiredReplicas, 6);
});

test('several triggers: each proposes, the largest proposal wins', () => {
  const a = model({
    minReplicas: 1,
    maxReplicas: 20,
    triggers: [one(100, 'rate'), one(1000, 'backlog')],
    behavior: free,
    initialReplicas: 2,
  });
  const r = a.at(0, { rate: [250], backlog: [5500] });
  assert.deepEqual(
    r.triggers.map((t) => t.proposal),
    [3, 6],
  );
  assert.equal(r.desiredReplicas, 6);
});

test('a failed metric blocks a scale-down but not a scale-up; all failed -> no change', () => {
  const o = {
    minReplicas: 1,
    maxReplicas: 20,
    triggers: [one(100, 'rate'), one(1000, 'backlog')],
    behavior: free,
  };
  const a = model({ ...o, initialReplicas: 5 });
  const down = a.at(0, { rate: [100], backlog: new Error('prometheus down') });
  assert.equal(down.desiredReplicas, 5);
  assert.match(down.reason, /not scaling/);
  const up = a.at(15, { rate: [900], backlog: new Error('prometheus down') });
  assert.equal(up.desiredReplicas, 9);
  const none = a.at(30, { rate: new Error('x'), backlog: new Error('y') });
  assert.equal(none.desiredReplicas, 9);
  assert.equal(none.metricDesired, null);
});

test('min and max bound the result; a count outside them is brought back first', () => {
  const a = model({
    minReplicas: 2,
    maxReplicas: 5,
    triggers: [one(10)],
    behavior: free,
    initialReplicas: 3,
  });
  assert.equal(a.at(0, { load: [1000] }).desiredReplicas, 5);
  assert.equal(a.at(15, { load: [0] }).desiredReplicas, 2);
  const over = model({ minReplicas: 2, maxReplicas: 5, triggers: [one(10)], initialReplicas: 9 });
  const r = over.at(0, { load: [1000] });
  assert.equal(r.desiredReplicas, 5);
  assert.equal(r.reason, 'current above maxReplicas');
});

test('default behavior: scale up by 100 % or 4 pods per 15 s, whichever is more', () => {
  // HPA docs, "Default Behavior": scaleUp policies Percent 100 / 15 s and Pods 4 / 15 s, selectPolicy Max.
  const a = model({ minReplicas: 1, maxReplicas: 100, triggers: [one(10)], initialReplicas: 1 });
  const steps = [0, 15, 30, 45].map((s) => a.at(s, { load: [500] }).desiredReplicas);
  // 1 -> max(2, 5) = 5 -> max(10, 9) = 10 -> 20 -> 40 (wants 50)
  assert.deepEqual(steps, [5, 10, 20, 40]);
  assert.equal(a.at(50, { load: [500] }).desiredReplicas, 40, 'within the same 15 s period: no more pods');
  assert.equal(a.at(61, { load: [500] }).desiredReplicas, 50);
});

test('default behavior: scale down waits for the 300 s stabilization window (highest recommendation wins)', () => {
  const a = model({ minReplicas: 1, maxReplicas: 20, triggers: [one(10)], initialReplicas: 10 });
  assert.equal(a.at(0, { load: [100] }).desiredReplicas, 10);
  for (let s = 15; s < 300; s += 15) assert.equal(a.at(s, { load: [20] }).desiredReplicas, 10, `at ${s} s`);
  // The 10 recommended at t=0 counts while it is newer than now - 300 s, so until t=300; then
  // 100 % per 15 s allows 10 -> 2 at once.
  assert.equal(a.at(300, { load: [20] }).desiredReplicas, 2);
});

test('stabilization window: a short dip inside the window does not scale down', () => {
  const behavior = { scaleDown: { stabilizationWindowSeconds: 60 } };
  const a = model({ minReplicas: 1, maxReplicas: 20, triggers: [one(10)], behavior, initialReplicas: 6 });
  a.at(0, { load: [60] });
  assert.equal(a.at(15, { load: [10] }).desiredReplicas, 6);
  assert.equal(a.at(30, { load: [60] }).desiredReplicas, 6);
  assert.equal(a.at(45, { load: [10] }).desiredReplicas, 6);
  // The 6 recommended at t=30 counts while it is newer than now - 60 s, i.e. until t=90.
  assert.equal(a.at(75, { load: [10] }).desiredReplicas, 6);
  assert.equal(a.at(90, { load: [10] }).desiredReplicas, 1);
});

test('scale-up stabilization window: the lowest recommendation of the window is used', () => {
  const behavior = { scaleUp: { stabilizationWindowSeconds: 30 } };
  const a = model({ minReplicas: 1, maxReplicas: 20, triggers: [one(10)], behavior, initialReplicas: 2 });
  assert.equal(a.at(0, { load: [20] }).desiredReplicas, 2);
  assert.equal(a.at(15, { load: [80] }).desiredReplicas, 2, 'the 2 of t=0 is still in the window');
  assert.equal(a.at(30, { load: [80] }).desiredReplicas, 6, 'window passed; the default policy allows +4');
  assert.equal(a.at(45, { load: [80] }).desiredReplicas, 8);
});

test('docs example: scale down 80 -> 10 with Pods 4 / 60 s and Percent 10 / 60 s: 8 at a time, then 4', () => {
  // HPA docs, "Scaling policies": "if there are 80 replicas and the target has to be scaled down to
  // 10 replicas then during the first step 8 replicas will be reduced. In the next iteration when
  // the number of replicas is 72, 10% of the pods is 7.2 but the number is rounded up to 8 ...
  // When the number of replicas falls below 40 the first policy (Pods) is applied".
  const behavior = {
    scaleDown: {
      policies: [
        { type: 'Pods' as const, value: 4, periodSeconds: 60 },
        { type: 'Percent' as const, value: 10, periodSeconds: 60 },
      ],
    },
  };
  const a = model({ minReplicas: 1, maxReplicas: 100, triggers: [one(10)], behavior, initialReplicas: 80 });
  const changes: [number, number][] = [];
  let last = 80;
  for (let s = 0; s <= 20 * 60; s += 15) {
    const r = a.at(s, { load: [100] }).desiredReplicas;
    if (r !== last) changes.push([s, r]);
    last = r;
  }
  // One step per 60 s period: 10 % while above 40 (72 -> 64 removes 8: "7.2 rounded up") ...
  assert.deepEqual(changes.slice(0, 6), [
    [0, 72],
    [60, 64],
    [120, 57],
    [180, 51],
    [240, 45],
    [300, 40],
  ]);
  // ... then 4 pods per period, down to the 10 the metric asks for.
  assert.deepEqual(
    changes.slice(6).map(([, r]) => r),
    [36, 32, 28, 24, 20, 16, 12, 10],
  );
});

test('docs example: at most 10 % per minute and selectPolicy Min with Pods 5 -> 5 pods at most', () => {
  const behavior = {
    scaleDown: {
      stabilizationWindowSeconds: 0,
      selectPolicy: 'Min' as const,
      policies: [
        { type: 'Percent' as const, value: 10, periodSeconds: 60 },
        { type: 'Pods' as const, value: 5, periodSeconds: 60 },
      ],
    },
  };
  const a = model({ minReplicas: 1, maxReplicas: 100, triggers: [one(10)], behavior, initialReplicas: 100 });
  assert.equal(a.at(0, { load: [100] }).desiredReplicas, 95);
  assert.equal(a.at(30, { load: [100] }).desiredReplicas, 95, 'same 60 s period');
  assert.equal(a.at(61, { load: [100] }).desiredReplicas, 90);
});

test('selectPolicy Disabled: no scaling in that direction', () => {
  const behavior = {
    scaleDown: { selectPolicy: 'Disabled' as const },
    scaleUp: { selectPolicy: 'Disabled' as const },
  };
  const a = model({ minReplicas: 1, maxReplicas: 20, triggers: [one(10)], behavior, initialReplicas: 5 });
  assert.equal(a.at(0, { load: [10] }).desiredReplicas, 5);
  assert.equal(a.at(400, { load: [500] }).desiredReplicas, 5);
});

test('KEDA fallback: replicas once the consecutive failures pass failureThreshold; a success resets', () => {
  // KEDA docs: failureThreshold 3, replicas 6 - "When my instance of prometheus is unavailable 3
  // consecutive times, KEDA will change the HPA metric such that the deployment will scale to 6".
  const a = model({
    minReplicas: 1,
    maxReplicas: 20,
    triggers: [one(10)],
    behavior: free,
    fallback: { failureThreshold: 3, replicas: 6 },
    initialReplicas: 2,
  });
  const down = new Error('connect ECONNREFUSED');
  const r = [15, 30, 45].map((s) => a.at(s, { load: down }));
  assert.deepEqual(
    r.map((x) => [x.desiredReplicas, x.triggers[0]!.consecutiveFailures, x.triggers[0]!.fallbackActive]),
    [
      [2, 1, false],
      [2, 2, false],
      [2, 3, false],
    ],
  );
  const fb = a.at(60, { load: down });
  assert.equal(fb.triggers[0]!.fallbackActive, true);
  assert.equal(fb.triggers[0]!.value, 60, 'target x fallback replicas');
  assert.equal(fb.desiredReplicas, 6);
  const ok = a.at(75, { load: [20] });
  assert.equal(ok.triggers[0]!.consecutiveFailures, 0);
  assert.equal(ok.desiredReplicas, 2);
  assert.equal(a.at(90, { load: down }).desiredReplicas, 2, 'the count starts again from 1');
});

test('KEDA Prometheus scaler: an empty result is 0 under ignoreNullValues (default), an error without it', () => {
  const base = { minReplicas: 1, maxReplicas: 20, behavior: free, initialReplicas: 4 };
  const ignore = model({ ...base, triggers: [one(10)], fallback: { failureThreshold: 0, replicas: 7 } });
  const a = ignore.at(0, { load: [] });
  assert.equal(a.triggers[0]!.value, 0);
  assert.equal(
    a.desiredReplicas,
    1,
    'a fresh install with no series scales to minReplicas, fallback never fires',
  );
  const strict = model({
    ...base,
    triggers: [{ ...one(10), ignoreNullValues: false }],
    fallback: { failureThreshold: 0, replicas: 7 },
  });
  const b = strict.at(0, { load: [] });
  assert.equal(b.triggers[0]!.error, 'empty result and ignoreNullValues is false');
  assert.equal(b.desiredReplicas, 7, 'failureThreshold 0: the first failure falls back');
  const many = model({ ...base, triggers: [one(10)] }).at(0, { load: [1, 2] });
  assert.match(many.triggers[0]!.error ?? '', /2 series/);
});

test('sync() queries each trigger once per sync and the period is 15 s by default', async () => {
  let t = 1_000;
  const m = new HpaModel({
    minReplicas: 1,
    maxReplicas: 5,
    triggers: [one(10, 'a'), one(10, 'b')],
    now: () => t,
  });
  assert.equal(m.syncPeriodSeconds, 15);
  const asked: string[] = [];
  const r = await m.sync(async (q) => {
    asked.push(q);
    if (q === 'q_b') throw new Error('boom');
    return [30];
  });
  assert.deepEqual(asked.sort(), ['q_a', 'q_b']);
  assert.equal(r.triggers[1]!.error, 'boom');
  assert.equal(r.desiredReplicas, 3);
  assert.equal(m.dueAt(), 16_000);
  t = 16_000;
});

test('invalid options are rejected with BED_INVALID_ARGUMENT naming the field', () => {
  const bad: [Partial<HpaModelOptions>, RegExp][] = [
    [{ minReplicas: 0 }, /minReplicas/],
    [{ maxReplicas: 0 }, /maxReplicas/],
    [{ triggers: [] }, /triggers/],
    [
      { behavior: { scaleDown: { stabilizationWindowSeconds: 4000 } } },
      /scaleDown.stabilizationWindowSeconds/,
    ],
    [{ fallback: { failureThreshold: 1, replicas: 0 } }, /fallback.replicas/],
  ];
  for (const [o, re] of bad) {
    assert.throws(
      () => new HpaModel({ minReplicas: 1, maxReplicas: 3, triggers: [one(1)], now: () => 0, ...o }),
      (e: unknown) => e instanceof BedError && e.code === 'BED_INVALID_ARGUMENT' && re.test(e.message),
    );
  }
});
