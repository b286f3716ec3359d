// EndpointWatcher when the API misbehaves: down at start, outages, 410 Gone, wrong token,
// RBAC, a black-holed server, bad config, TLS. Against the fake API server (a stand-in: no
// real Kubernetes API server can run here) through the real @kubernetes/client-node.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { ReadyEndpoint } from '../../agent/discovery/endpoints';
import type { DiscoveryError } from '../../agent/discovery/errors';
import { EndpointWatcher } from '../../agent/discovery/k8s-watcher';
import type { KubeConfigSource } from '../../agent/discovery/kube-client';
import { parseDiscoveryTarget } from '../../agent/discovery/target';
import type { EndpointWatcherOptions } from '../../agent/discovery/watcher-options';
import { endpointSlice, FakeKubeApi, type FakeSliceSpec, pod, waitFor } from '../../loadtest/fake-kube-api';

const TOKEN = 'sa-token-of-the-agent';
const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

const slice = (name: string, endpoints: FakeSliceSpec['endpoints']) =>
  endpointSlice({ name, service: 'enricher', endpoints });
const names = (l: readonly ReadyEndpoint[]) => l.map((e) => e.podName);
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'snowtap-kube-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function fake(tls = false): Promise<FakeKubeApi> {
  const api = await FakeKubeApi.start({ token: TOKEN, tls });
  cleanups.push(() => api.close());
  api.apply(slice('enricher-a', [pod('10.1.0.1', 'e-1'), pod('10.1.0.2', 'e-2')]));
  return api;
}

function watch(kubeConfig: KubeConfigSource, opts: Partial<EndpointWatcherOptions> = {}) {
  const w = new EndpointWatcher({
    target: parseDiscoveryTarget('k8s://snowtap/enricher:link'),
    kubeConfig,
    settleMs: 0,
    backoffStartMs: 20,
    backoffMaxMs: 80,
    requestTimeoutMs: 2000,
    ...opts,
  });
  cleanups.push(() => w.stop());
  const seen: Array<Array<string | undefined>> = [];
  const errors: DiscoveryError[] = [];
  w.on('endpoints', (list) => seen.push(names(list)));
  w.on('error', (e) => errors.push(e));
  w.start();
  return { w, seen, errors, codes: () => new Set(errors.map((e) => e.code)) };
}

test('API down at start: retries with backoff, then works', async () => {
  const api = await fake();
  const kubeconfig = api.writeKubeconfig(tempDir());
  await api.goDown();
  const r = watch({ kind: 'file', path: kubeconfig });
  await waitFor('retries', () => r.errors.length >= 3);
  assert.deepEqual([...r.codes()], ['DISCOVERY_UNREACHABLE']);
  assert.equal(r.w.endpoints(), null);
  await api.comeUp();
  await waitFor('endpoints', () => r.seen.length === 1);
  assert.deepEqual(r.seen[0], ['e-1', 'e-2']);
  assert.ok(r.w.stats.errors.DISCOVERY_UNREACHABLE! >= 3);
});

test('outage mid-watch: the last set stays; changes made meanwhile arrive on reconnect', async () => {
  const api = await fake();
  const r = watch({ kind: 'file', path: api.writeKubeconfig(tempDir()) });
  await waitFor('watch', () => api.openWatches === 1);
  await waitFor('watching', () => r.w.stats.watching);
  await api.goDown();
  await waitFor('errors', () => r.errors.length >= 2);
  assert.deepEqual(names(r.w.endpoints()!), ['e-1', 'e-2'], 'last known set kept');
  // Watch attempts go on during the outage; none is answered, so none counts as watching.
  assert.equal(r.w.stats.watching, false);
  api.apply(slice('enricher-a', [pod('10.1.0.2', 'e-2')]));
  await api.comeUp();
  await waitFor('change', () => r.seen.length === 2);
  assert.deepEqual(r.seen, [['e-1', 'e-2'], ['e-2']]);
  assert.equal(api.count('list'), 1, 'resumed from the resourceVersion: no relist');
});

for (const expiredAs of ['event', 'http'] as const) {
  test(`410 Gone (${expiredAs === 'event' ? 'ERROR event' : 'HTTP status'}) -> relist, correct set, one event`, async () => {
    const api = await fake();
    api.expiredAs = expiredAs;
    api.apply(slice('enricher-b', [pod('10.1.0.3', 'e-3')]));
    const r = watch({ kind: 'file', path: api.writeKubeconfig(tempDir()) });
    await waitFor('watch', () => api.openWatches === 1);
    await api.goDown();
    api.remove('enricher-a');
    api.apply(slice('enricher-b', [pod('10.1.0.3', 'e-3'), pod('10.1.0.4', 'e-4')]));
    api.apply(slice('enricher-c', [pod('10.1.0.5', 'e-5')]));
    api.compact();
    await api.comeUp();
    await waitFor('relisted', () => r.seen.length === 2);
    assert.deepEqual(r.seen, [
      ['e-1', 'e-2', 'e-3'],
      ['e-3', 'e-4', 'e-5'],
    ]);
    assert.equal(r.w.stats.expired, 1);
    assert.equal(r.w.stats.relists, 1);
    await waitFor('rewatch', () => api.openWatches === 1);
    assert.equal(api.requests.at(-1)?.query.resourceVersion, String(api.resourceVersion));
    assert.ok(!r.codes().has('DISCOVERY_EXPIRED'), 'an expiry after a healthy watch is not a failure');
  });
}

test('wrong token: UNAUTHORIZED error events and retries until the token works', async () => {
  const api = await fake();
  const r = watch({ kind: 'file', path: api.writeKubeconfig(tempDir(), 'stale-token') });
  await waitFor('retries', () => r.errors.length >= 3);
  assert.deepEqual([...r.codes()], ['DISCOVERY_UNAUTHORIZED']);
  assert.equal(r.errors[0]!.status, 401);
  assert.match(r.errors[0]!.message, /^list: HTTP 401 Unauthorized/);
  api.token = 'stale-token'; // as if the cluster had accepted it all along
  await waitFor('endpoints', () => r.seen.length === 1);
});

test('403 and 500 are retried; ERROR events other than 410 restart the watch', async () => {
  const api = await fake();
  api.failNext(403, 'Forbidden');
  api.failNext(500, 'InternalError');
  const r = watch({ kind: 'file', path: api.writeKubeconfig(tempDir()) });
  await waitFor('watch', () => api.openWatches === 1);
  assert.deepEqual([...r.codes()], ['DISCOVERY_FORBIDDEN', 'DISCOVERY_API_ERROR']);
  assert.equal(api.count('list'), 3);
  api.errorEvent(500, 'InternalError');
  await waitFor('rewatch', () => api.count('watch') === 2 && api.openWatches === 1);
  assert.equal(r.errors.at(-1)?.status, 500);
  assert.equal(api.count('list'), 3, 'resumed from the resourceVersion: no relist');
  assert.deepEqual(r.seen, [['e-1', 'e-2']]);
});

test('a black-holed API server: TIMEOUT on list and on watch, then retried', async () => {
  const api = await fake();
  api.hangNext(1);
  const r = watch({ kind: 'file', path: api.writeKubeconfig(tempDir()) }, { requestTimeoutMs: 150 });
  await waitFor('watch', () => api.openWatches === 1);
  api.bookmark(); // the watch delivered something: its end is not a failure
  await waitFor('bookmark', () => r.w.stats.events === 1);
  api.hangNext(1);
  api.endWatches();
  await waitFor('hanging watch', () => api.count('watch') === 2);
  assert.equal(r.w.stats.watching, false, 'a watch request with no answer is not watching');
  await waitFor('rewatch', () => api.count('watch') === 3 && api.openWatches === 1);
  await waitFor('watching again', () => r.w.stats.watching);
  assert.deepEqual(
    r.errors.map((e) => `${e.code} ${e.message.split(':')[0]}`),
    ['DISCOVERY_TIMEOUT list', 'DISCOVERY_TIMEOUT watch'],
  );
  assert.deepEqual(r.seen, [['e-1', 'e-2']]);
});

test('in-cluster config: KUBERNETES_SERVICE_HOST/PORT, service-account token and CA (https)', async () => {
  const api = await fake(true);
  const root = tempDir();
  api.writeServiceAccount(root);
  const saved = { host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT };
  process.env.KUBERNETES_SERVICE_HOST = '127.0.0.1';
  process.env.KUBERNETES_SERVICE_PORT = String(api.port);
  try {
    const r = watch({ kind: 'in-cluster', root });
    await waitFor('endpoints', () => r.seen.length === 1);
    assert.deepEqual(r.errors, []);
  } finally {
    restore('KUBERNETES_SERVICE_HOST', saved.host);
    restore('KUBERNETES_SERVICE_PORT', saved.port);
  }
});

test('KUBECONFIG env (the default source) over https with the CA in the kubeconfig', async () => {
  const api = await fake(true);
  const saved = process.env.KUBECONFIG;
  process.env.KUBECONFIG = api.writeKubeconfig(tempDir());
  try {
    const r = watch({ kind: 'default' });
    await waitFor('endpoints', () => r.seen.length === 1);
  } finally {
    restore('KUBECONFIG', saved);
  }
});

test('an untrusted server certificate is DISCOVERY_TLS', async () => {
  const api = await fake(true);
  const dir = tempDir();
  const text = `clusters:\n- name: f\n  cluster:\n    server: ${api.url}\nusers:\n- name: u\n  user:\n    token: ${TOKEN}\ncontexts:\n- name: c\n  context: {cluster: f, user: u}\ncurrent-context: c\n`;
  writeFileSync(join(dir, 'config'), text);
  const r = watch({ kind: 'file', path: join(dir, 'config') });
  await waitFor('error', () => r.errors.length >= 1);
  assert.equal(r.errors[0]!.code, 'DISCOVERY_TLS');
});

test('bad config: missing file, no in-cluster env -> DISCOVERY_CONFIG, retried, no throw', async () => {
  const missing = watch({ kind: 'file', path: join(tempDir(), 'nope') });
  const saved = process.env.KUBERNETES_SERVICE_HOST;
  delete process.env.KUBERNETES_SERVICE_HOST;
  try {
    const noEnv = watch({ kind: 'in-cluster', root: tempDir() });
    await waitFor('errors', () => missing.errors.length >= 2 && noEnv.errors.length >= 2);
    assert.deepEqual([...missing.codes(), ...noEnv.codes()], ['DISCOVERY_CONFIG', 'DISCOVERY_CONFIG']);
  } finally {
    restore('KUBERNETES_SERVICE_HOST', saved);
  }
});

test('without an error listener, failures are counted (and logged), never thrown', async () => {
  const w = new EndpointWatcher({
    target: parseDiscoveryTarget('k8s://snowtap/enricher'),
    kubeConfig: { kind: 'file', path: join(tempDir(), 'nope') },
    backoffStartMs: 20,
    backoffMaxMs: 40,
  });
  cleanups.push(() => w.stop());
  w.start();
  await waitFor('counted', () => (w.stats.errors.DISCOVERY_CONFIG ?? 0) >= 2);
});

function restore(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}
