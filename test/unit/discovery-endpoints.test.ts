// EndpointSlice -> ready endpoints, on slices built by the fake API's builder (the JSON a
// real EndpointSlice controller writes), independent of the production code.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  addressSortKey,
  diffEndpoints,
  endpointsKey,
  isReadyTarget,
  type ReadyEndpoint,
  reduceEndpointSlices,
} from '../../agent/discovery/endpoints';
import { spreadOrder } from '../../agent/discovery/spread';
import { endpointSlice, type FakeSliceSpec, pod } from '../../loadtest/fake-kube-api';

const slice = (spec: Partial<FakeSliceSpec> & Pick<FakeSliceSpec, 'endpoints'>) =>
  endpointSlice({ name: 'enricher-abcde', service: 'enricher', ...spec });
const addrs = (eps: readonly ReadyEndpoint[]) => eps.map((e) => `${e.address}:${e.port}`);

test('conditions: nil ready counts as ready; ready=false and terminating=true do not', () => {
  const r = reduceEndpointSlices([
    slice({
      endpoints: [
        { ip: '10.0.0.1', pod: 'p1' }, // no conditions at all
        { ip: '10.0.0.2', pod: 'p2', ready: null, terminating: null },
        { ip: '10.0.0.3', pod: 'p3', ready: false, serving: false },
        // terminating but still serving: going away, no new connections
        { ip: '10.0.0.4', pod: 'p4', ready: false, serving: true, terminating: true },
        // publishNotReadyAddresses reports ready=true even while terminating
        { ip: '10.0.0.5', pod: 'p5', ready: true, serving: true, terminating: true },
        // serving is not what decides: ready is
        { ip: '10.0.0.6', pod: 'p6', ready: true, serving: false, terminating: false },
      ],
    }),
  ]);
  assert.deepEqual(addrs(r.endpoints), ['10.0.0.1:7400', '10.0.0.2:7400', '10.0.0.6:7400']);
  assert.equal(r.notReady, 1);
  assert.equal(r.terminating, 2);
  assert.deepEqual(r.problems, []);
  assert.equal(isReadyTarget(undefined), true);
  assert.equal(isReadyTarget(null), true);
});

test('pod name and zone come along; numeric sort, IPv4 before IPv6', () => {
  const r = reduceEndpointSlices([
    slice({ name: 'e-v6', addressType: 'IPv6', endpoints: [pod('fd00::a', 'e-6', 'z1')] }),
    slice({
      endpoints: [pod('10.0.0.10', 'e-10', 'z2'), pod('10.0.0.9', 'e-9', 'z1'), pod('9.255.0.1', 'e-x')],
    }),
  ]);
  assert.deepEqual(r.endpoints, [
    { address: '9.255.0.1', port: 7400, podName: 'e-x' },
    { address: '10.0.0.9', port: 7400, podName: 'e-9', zone: 'z1' },
    { address: '10.0.0.10', port: 7400, podName: 'e-10', zone: 'z2' },
    { address: 'fd00::a', port: 7400, podName: 'e-6', zone: 'z1' },
  ]);
});

test('several slices are merged; an endpoint in two slices (while moved) counts once', () => {
  const a = slice({ name: 'e-a', endpoints: [pod('10.0.0.1', 'p1'), pod('10.0.0.2', 'p2')] });
  const b = slice({ name: 'e-b', endpoints: [pod('10.0.0.2', 'p2'), pod('10.0.0.3', 'p3')] });
  const c = slice({ name: 'e-c', endpoints: null });
  assert.deepEqual(addrs(reduceEndpointSlices([a, b, c]).endpoints), [
    '10.0.0.1:7400',
    '10.0.0.2:7400',
    '10.0.0.3:7400',
  ]);
  // ...and a stale not-ready copy in one slice does not hide the ready copy in the other
  const stale = slice({ name: 'e-d', endpoints: [{ ip: '10.0.0.3', pod: 'p3', ready: false }] });
  assert.deepEqual(addrs(reduceEndpointSlices([stale, b]).endpoints), ['10.0.0.2:7400', '10.0.0.3:7400']);
});

test('dual stack: one endpoint per pod (IPv4) unless a family is chosen', () => {
  const v4 = slice({ name: 'e-4', endpoints: [pod('10.0.0.1', 'p1'), pod('10.0.0.2', 'p2')] });
  const v6 = slice({
    name: 'e-6',
    addressType: 'IPv6',
    endpoints: [pod('fd00::1', 'p1'), pod('fd00::2', 'p2')],
  });
  assert.deepEqual(addrs(reduceEndpointSlices([v6, v4]).endpoints), ['10.0.0.1:7400', '10.0.0.2:7400']);
  assert.deepEqual(addrs(reduceEndpointSlices([v4, v6], { family: 'IPv6' }).endpoints), [
    'fd00::1:7400',
    'fd00::2:7400',
  ]);
  assert.deepEqual(addrs(reduceEndpointSlices([v4, v6], { family: 'IPv4' }).endpoints), [
    '10.0.0.1:7400',
    '10.0.0.2:7400',
  ]);
});

test('IPv6 spellings of one address are one endpoint (no targetRef)', () => {
  const s = slice({
    addressType: 'IPv6',
    endpoints: [
      { ip: 'fd00:0:0::1', ready: true },
      { ip: 'FD00::1', ready: true },
      { ip: '::ffff:10.0.0.1', ready: true },
      { ip: '::1', ready: true },
    ],
  });
  assert.deepEqual(addrs(reduceEndpointSlices([s]).endpoints), [
    '::1:7400',
    '::ffff:10.0.0.1:7400',
    'fd00:0:0::1:7400',
  ]);
  assert.equal(addressSortKey('::ffff:10.0.0.1', 'IPv6'), addressSortKey('0:0:0:0:0:ffff:a00:1', 'IPv6'));
  assert.equal(addressSortKey('10.0.0.1', 'IPv6'), null);
  assert.equal(addressSortKey('fd00::1', 'IPv4'), null);
  assert.equal(addressSortKey('10.0.0.256', 'IPv4'), null);
});

test('ports: by name, by number, the only TCP port; UDP ports never', () => {
  const ports = [
    { name: 'link', port: 7400 },
    { name: 'metrics', port: 9400 },
    { name: 'dns', port: 53, protocol: 'UDP' },
  ];
  const s = slice({ ports, endpoints: [pod('10.0.0.1', 'p1')] });
  assert.deepEqual(addrs(reduceEndpointSlices([s], { port: 'metrics' }).endpoints), ['10.0.0.1:9400']);
  assert.deepEqual(addrs(reduceEndpointSlices([s], { port: 7400 }).endpoints), ['10.0.0.1:7400']);
  const one = slice({
    ports: [{ port: 7401 }, { name: 'dns', port: 53, protocol: 'UDP' }],
    endpoints: [pod('10.0.0.1', 'p1')],
  });
  assert.deepEqual(addrs(reduceEndpointSlices([one]).endpoints), ['10.0.0.1:7401']);
  // the same port name may map to different numbers in different slices (per-pod targetPort)
  const other = slice({
    name: 'e-2',
    ports: [{ name: 'link', port: 7500 }],
    endpoints: [pod('10.0.0.2', 'p2')],
  });
  assert.deepEqual(addrs(reduceEndpointSlices([s, other], { port: 'link' }).endpoints), [
    '10.0.0.1:7400',
    '10.0.0.2:7500',
  ]);
});

test('port problems skip the slice and say why', () => {
  const two = slice({
    ports: [
      { name: 'link', port: 7400 },
      { name: 'metrics', port: 9400 },
    ],
    endpoints: [pod('10.0.0.1', 'p')],
  });
  const r = reduceEndpointSlices([two]);
  assert.deepEqual(r.endpoints, []);
  assert.equal(r.problems[0]?.code, 'DISCOVERY_PORT');
  assert.match(r.problems[0]!.message, /several TCP ports \(link=7400, metrics=9400\): name one/);
  assert.match(reduceEndpointSlices([two], { port: 'grpc' }).problems[0]!.message, /no TCP port named grpc/);
  assert.match(reduceEndpointSlices([two], { port: 1 }).problems[0]!.message, /no TCP port 1 /);
  const none = slice({ ports: [], endpoints: [pod('10.0.0.1', 'p')] });
  assert.match(reduceEndpointSlices([none]).problems[0]!.message, /^no TCP port$/);
  const all = slice({ ports: [{ name: 'link', port: null }], endpoints: [pod('10.0.0.1', 'p')] });
  assert.match(reduceEndpointSlices([all]).problems[0]!.message, /has no port number/);
});

test('FQDN slices and bad addresses are problems, not endpoints', () => {
  const fqdn = slice({
    name: 'e-f',
    addressType: 'FQDN',
    endpoints: [{ ip: 'enricher.example.com', ready: true }],
  });
  const bad = slice({ name: 'e-b', endpoints: [{ ip: 'fd00::1', ready: true }, pod('10.0.0.1', 'p')] });
  const r = reduceEndpointSlices([fqdn, bad]);
  assert.deepEqual(addrs(r.endpoints), ['10.0.0.1:7400']);
  assert.deepEqual(
    r.problems.map((p) => [p.slice, p.code]),
    [
      ['e-f', 'DISCOVERY_SLICE'],
      ['e-b', 'DISCOVERY_SLICE'],
    ],
  );
});

test('the result does not depend on slice or endpoint order', () => {
  const a = slice({ name: 'e-a', endpoints: [pod('10.0.0.3', 'p3'), pod('10.0.0.1', 'p1')] });
  const b = slice({ name: 'e-b', endpoints: [pod('10.0.0.2', 'p2'), pod('10.0.0.1', 'p1')] });
  assert.equal(
    endpointsKey(reduceEndpointSlices([a, b]).endpoints),
    endpointsKey(reduceEndpointSlices([b, a]).endpoints),
  );
});

test('endpointsKey and diffEndpoints: a new pod on a reused IP is a change', () => {
  const before = [{ address: '10.0.0.1', port: 7400, podName: 'a' }];
  const after = [{ address: '10.0.0.1', port: 7400, podName: 'b' }];
  assert.notEqual(endpointsKey(before), endpointsKey(after));
  assert.deepEqual(diffEndpoints(before, after), { added: after, removed: before });
  assert.deepEqual(diffEndpoints(before, before), { added: [], removed: [] });
});

const pods = (n: number): ReadyEndpoint[] =>
  Array.from({ length: n }, (_, i) => ({ address: `10.0.${i >> 8}.${i & 255}`, port: 7400 }));

test('spreadOrder: a permutation, stable per agent, different across agents', () => {
  const eps = pods(8);
  const a = spreadOrder(eps, 'resolver-0');
  assert.deepEqual(
    [...a].sort((x, y) => x.address.localeCompare(y.address)),
    [...eps].sort((x, y) => x.address.localeCompare(y.address)),
  );
  assert.deepEqual(spreadOrder([...eps].reverse(), 'resolver-0'), a);
  const firsts = new Set<string>();
  for (let i = 0; i < 200; i++) firsts.add(spreadOrder(eps, `resolver-${i}`)[0]!.address);
  assert.equal(firsts.size, 8, 'every pod is somebody first choice');
});

test('spreadOrder: a new pod is first for about 1/N of agents; the others keep their order', () => {
  const before = pods(9);
  const after = [...before, { address: '10.0.9.9', port: 7400 }];
  const agents = 5000;
  let moved = 0;
  for (let i = 0; i < agents; i++) {
    const id = `resolver-${i}`;
    const next = spreadOrder(after, id);
    if (next[0]!.address === '10.0.9.9') moved++;
    const withoutNew = next.filter((e) => e.address !== '10.0.9.9');
    assert.deepEqual(withoutNew, spreadOrder(before, id));
  }
  const share = moved / agents;
  assert.ok(share > 0.08 && share < 0.12, `new pod first for ${share} of agents, expected ~0.10`);
});
