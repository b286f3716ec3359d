// EndpointWatcher against the fake API server (loadtest/fake-kube-api.ts: a stand-in,
// no real Kubernetes API server can run here) through the real @kubernetes/client-node.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { ReadyEndpoint } from '../../agent/discovery/endpoints';
import type { DiscoveryError } from '../../agent/discovery/errors';
import { type EndpointsChange, EndpointWatcher } from '../../agent/discovery/k8s-watcher';
import { parseDiscoveryTarget } from '../../agent/discovery/target';
import type { EndpointWatcherOptions } from '../../agent/discovery/watcher-options';
import { endpointSlice, FakeKubeApi, type FakeSliceSpec, pod, waitFor } from '../../loadtest/fake-kube-api';

const TOKEN = 'sa-token-of-the-agent';
const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

interface Run {
  api: FakeKubeApi;
  w: EndpointWatcher;
  seen: Array<{ list: string[]; change: EndpointsChange }>;
  errors: DiscoveryError[];
}

const names = (l: readonly ReadyEndpoint[]) => l.map((e) => `${e.podName}@${e.address}:${e.port}`);
const slice = (name: string, endpoints: FakeSliceSpec['endpoints'], extra: Partial<FakeSliceSpec> = {}) =>
  endpointSlice({ name, service: 'enricher', endpoints, ...extra });

async function run(
  opts: Partial<EndpointWatcherOptions> = {},
  target = 'k8s://snowtap/enricher',
): Promise<Run> {
  const api = await FakeKubeApi.start({ token: TOKEN });
  cleanups.push(() => api.close());
  const dir = mkdtempSync(join(tmpdir(), 'snowtap-kube-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const w = new EndpointWatcher({
    target: parseDiscoveryTarget(target),
    kubeConfig: { kind: 'file', path: api.writeKubeconfig(dir) },
    settleMs: 0,
    backoffStartMs: 20,
    backoffMaxMs: 80,
    requestTimeoutMs: 2000,
    ...opts,
  });
  cleanups.push(() => w.stop());
  const r: Run = { api, w, seen: [], errors: [] };
  w.on('endpoints', (list, change) => r.seen.push({ list: names(list), change }));
  w.on('error', (e) => r.errors.push(e));
  return r;
}

const watchingFrom = (api: FakeKubeApi) =>
  api.requests.filter((q) => q.watch).map((q) => q.query.resourceVersion);

test('initial list -> endpoints; add a pod -> event; not ready / terminating -> removed', async () => {
  const r = await run();
  r.api.apply(slice('enricher-a', [pod('10.1.0.10', 'e-1'), pod('10.1.0.9', 'e-2')]));
  r.w.start();
  await waitFor('first list', () => r.seen.length === 1);
  assert.deepEqual(r.seen[0]!.list, ['e-2@10.1.0.9:7400', 'e-1@10.1.0.10:7400']);
  assert.deepEqual(r.w.endpoints()?.length, 2);
  await waitFor('watch', () => r.api.openWatches === 1);

  r.api.apply(
    slice('enricher-a', [pod('10.1.0.10', 'e-1'), pod('10.1.0.9', 'e-2'), pod('10.1.0.11', 'e-3')]),
  );
  await waitFor('pod added', () => r.seen.length === 2);
  assert.deepEqual(names(r.seen[1]!.change.added), ['e-3@10.1.0.11:7400']);

  r.api.apply(
    slice('enricher-a', [
      pod('10.1.0.10', 'e-1'),
      { ip: '10.1.0.9', pod: 'e-2', ready: false },
      pod('10.1.0.11', 'e-3'),
    ]),
  );
  await waitFor('not ready removed', () => r.seen.length === 3);
  assert.deepEqual(r.seen[2]!.list, ['e-1@10.1.0.10:7400', 'e-3@10.1.0.11:7400']);
  assert.equal(r.seen[2]!.change.notReady, 1);

  const going = { ip: '10.1.0.10', pod: 'e-1', ready: false, serving: true, terminating: true };
  r.api.apply(
    slice('enricher-a', [going, { ip: '10.1.0.9', pod: 'e-2', ready: false }, pod('10.1.0.11', 'e-3')]),
  );
  await waitFor('terminating removed', () => r.seen.length === 4);
  assert.deepEqual(r.seen[3]!.list, ['e-3@10.1.0.11:7400']);
  assert.deepEqual(names(r.seen[3]!.change.removed), ['e-1@10.1.0.10:7400']);
  assert.equal(r.seen[3]!.change.terminating, 1);

  // A slice update that changes nothing we use (another pod's zone, say) emits nothing.
  r.api.apply(
    slice('enricher-a', [
      going,
      { ip: '10.1.0.9', pod: 'e-2', ready: false, zone: 'b' },
      pod('10.1.0.11', 'e-3'),
    ]),
  );
  r.api.bookmark();
  await waitFor('events applied', () => r.w.stats.events === 5);
  assert.equal(r.seen.length, 4);
  assert.equal(r.w.stats.endpoints, 1);
  assert.equal(r.w.stats.changes, 4);
  assert.ok(r.w.stats.lastChangeMs > 0 && r.w.stats.lastSyncMs >= r.w.stats.lastChangeMs);
  assert.deepEqual(r.errors, []);
  assert.deepEqual([r.w.stats.lists, r.w.stats.relists, r.w.stats.watches], [1, 0, 1]);
});

test('several slices: added and deleted slices change the union', async () => {
  const r = await run();
  r.api.apply(slice('enricher-a', [pod('10.1.0.1', 'e-1')]));
  r.w.start();
  await waitFor('watch', () => r.api.openWatches === 1);
  r.api.apply(slice('enricher-b', [pod('10.1.0.2', 'e-2'), pod('10.1.0.3', 'e-3')]));
  await waitFor('second slice', () => r.seen.length === 2);
  assert.deepEqual(r.seen[1]!.list, ['e-1@10.1.0.1:7400', 'e-2@10.1.0.2:7400', 'e-3@10.1.0.3:7400']);
  r.api.remove('enricher-a');
  await waitFor('slice deleted', () => r.seen.length === 3);
  assert.deepEqual(r.seen[2]!.list, ['e-2@10.1.0.2:7400', 'e-3@10.1.0.3:7400']);
  // Another Service's slices in the namespace are not ours.
  r.api.apply(endpointSlice({ name: 'other-a', service: 'other', endpoints: [pod('10.1.0.9', 'o-1')] }));
  r.api.apply(slice('enricher-b', [pod('10.1.0.2', 'e-2')]));
  await waitFor('change', () => r.seen.length === 4);
  assert.deepEqual(r.seen[3]!.list, ['e-2@10.1.0.2:7400']);
});

test('watch stream ends -> restart from the last resourceVersion, no duplicate events', async () => {
  const r = await run();
  r.api.apply(slice('enricher-a', [pod('10.1.0.1', 'e-1')]));
  r.w.start();
  await waitFor('watch', () => r.api.openWatches === 1);
  r.api.apply(slice('enricher-a', [pod('10.1.0.1', 'e-1'), pod('10.1.0.2', 'e-2')]));
  await waitFor('event', () => r.seen.length === 2);
  const lastEventRv = String(r.api.resourceVersion);
  r.api.endWatches();
  await waitFor('rewatch', () => r.api.count('watch') === 2 && r.api.openWatches === 1);
  assert.deepEqual(watchingFrom(r.api), ['1001', lastEventRv]);

  // A bookmark moves the resume point past changes that are not ours.
  r.api.apply(endpointSlice({ name: 'other-a', service: 'other', endpoints: [pod('10.1.0.9', 'o-1')] }));
  r.api.bookmark();
  await waitFor('bookmark', () => r.w.stats.events === 2);
  r.api.endWatches();
  await waitFor('rewatch', () => r.api.count('watch') === 3 && r.api.openWatches === 1);
  assert.equal(watchingFrom(r.api)[2], String(r.api.resourceVersion));

  r.api.apply(slice('enricher-a', [pod('10.1.0.2', 'e-2')]));
  await waitFor('event after restart', () => r.seen.length === 3);
  assert.deepEqual(
    r.seen.map((s) => s.list.length),
    [1, 2, 1],
  );
  assert.equal(r.api.count('list'), 1, 'a clean end does not relist');
  assert.deepEqual([r.w.stats.watches, r.w.stats.watchRestarts], [3, 2]);
  assert.deepEqual(r.errors, []);
});

test('a burst of changes within settleMs is one event; a flap is none', async () => {
  const r = await run({ settleMs: 150 });
  r.api.apply(slice('enricher-a', [pod('10.1.0.1', 'e-1')]));
  r.w.start();
  await waitFor('watch', () => r.api.openWatches === 1);
  assert.equal(r.seen.length, 1, 'the first list is emitted at once');
  for (let i = 2; i <= 5; i++) {
    const eps = Array.from({ length: i }, (_, k) => pod(`10.1.0.${k + 1}`, `e-${k + 1}`));
    r.api.apply(slice('enricher-a', eps));
  }
  await waitFor('coalesced', () => r.seen.length === 2);
  assert.equal(r.seen[1]!.list.length, 5);
  assert.equal(r.seen[1]!.change.added.length, 4);
  r.api.apply(slice('enricher-a', [pod('10.1.0.1', 'e-1')]));
  r.api.apply(
    slice(
      'enricher-a',
      Array.from({ length: 5 }, (_, k) => pod(`10.1.0.${k + 1}`, `e-${k + 1}`)),
    ),
  );
  await waitFor('events', () => r.w.stats.events === 6);
  await new Promise((res) => setTimeout(res, 300));
  assert.equal(r.seen.length, 2);
});

test('a slice without the named port: one DISCOVERY_PORT error, not one per event', async () => {
  const r = await run({}, 'k8s://snowtap/enricher:grpc');
  r.api.apply(slice('enricher-a', [pod('10.1.0.1', 'e-1')]));
  r.api.apply(slice('enricher-b', [pod('10.1.0.2', 'e-2')], { ports: [{ name: 'grpc', port: 7500 }] }));
  r.w.start();
  await waitFor('first list', () => r.seen.length === 1 && r.api.openWatches === 1);
  assert.deepEqual(r.seen[0]!.list, ['e-2@10.1.0.2:7500']);
  r.api.apply(
    slice('enricher-b', [pod('10.1.0.2', 'e-2'), pod('10.1.0.3', 'e-3')], {
      ports: [{ name: 'grpc', port: 7500 }],
    }),
  );
  await waitFor('event', () => r.seen.length === 2);
  assert.deepEqual(
    r.errors.map((e) => [e.code, e.message]),
    [['DISCOVERY_PORT', 'EndpointSlice enricher-a: no TCP port named grpc (ports: link=7400)']],
  );
  assert.equal(r.w.stats.errors.DISCOVERY_PORT, 1);
});

test('stop(): the watch closes, no events and no requests afterwards', async () => {
  const r = await run();
  r.api.apply(slice('enricher-a', [pod('10.1.0.1', 'e-1')]));
  r.w.start();
  await waitFor('watch', () => r.api.openWatches === 1);
  r.w.stop();
  await waitFor('watch closed', () => r.api.openWatches === 0);
  assert.equal(r.w.stats.watching, false);
  const requests = r.api.requests.length;
  r.api.apply(slice('enricher-a', [pod('10.1.0.2', 'e-2')]));
  await new Promise((res) => setTimeout(res, 200));
  assert.equal(r.seen.length, 1);
  assert.equal(r.api.requests.length, requests);
  assert.deepEqual(r.errors, []);
  assert.throws(() => r.w.start(), { code: 'DISCOVERY_INVALID_STATE' });
  r.w.stop(); // twice is fine
});

test('invalid options are rejected with the field named', () => {
  const target = parseDiscoveryTarget('k8s://a/b');
  assert.throws(() => new EndpointWatcher({ target, settleMs: -1 }), /settleMs must be an integer >= 0/);
  assert.throws(
    () => new EndpointWatcher({ target, backoffStartMs: 10, backoffMaxMs: 5 }),
    /backoffStartMs \(10\)/,
  );
  assert.throws(
    () => new EndpointWatcher({ target, kubeconfig: 'x' } as unknown as EndpointWatcherOptions),
    (e: DiscoveryError) =>
      e.code === 'DISCOVERY_INVALID_OPTION' && /unknown endpoint watcher option kubeconfig/.test(e.message),
  );
  assert.throws(
    () => new EndpointWatcher({ target, family: 'ipv4' as 'IPv4' }),
    /family must be IPv4 or IPv6/,
  );
});
