// The rules loadtest/kube-proxy.ts hands to iptables-restore and nft (pure rendering, no kernel):
// kube-proxy's chain names (golden values from kube-proxy's own test fixtures for ns1/svc1:p80),
// the 1/(n-i) probability ladder, the numgen vmap, atomic whole-table replacement, and the reject
// rule for a Service without endpoints.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BedError } from '../../loadtest/bed-errors';
import {
  iptablesRules,
  nftablesRules,
  type ServiceSpec,
  sepChainName,
  svcChainName,
} from '../../loadtest/kube-proxy';

const svc: ServiceSpec = {
  namespace: 'ns1',
  name: 'svc1',
  portName: 'p80',
  clusterIP: '172.30.0.41',
  port: 80,
};
const pods = ['10.180.0.1', '10.180.0.2', '10.180.0.3'];

test("chain names are kube-proxy's: sha256 -> base32 -> 16 characters", () => {
  // kube-proxy's proxier tests name ns1/svc1:p80 KUBE-SVC-XPGD46QRK7WJZT7O and its endpoint
  // 10.180.0.1:80 KUBE-SEP-SXIVWICOYRO3J4NJ.
  assert.equal(svcChainName(svc), 'KUBE-SVC-XPGD46QRK7WJZT7O');
  assert.equal(sepChainName(svc, '10.180.0.1'), 'KUBE-SEP-SXIVWICOYRO3J4NJ');
});

test('iptables: a probability ladder 1/3, 1/2, then unconditional, each to a DNAT chain', () => {
  const rules = iptablesRules(svc, pods);
  const svcRules = rules.split('\n').filter((l) => l.startsWith('-A KUBE-SVC-XPGD46QRK7WJZT7O '));
  assert.equal(svcRules.length, 3);
  assert.match(svcRules[0]!, /--mode random --probability 0\.3333333333 -j KUBE-SEP-SXIVWICOYRO3J4NJ$/);
  assert.match(svcRules[1]!, /--mode random --probability 0\.5000000000 -j KUBE-SEP-/);
  assert.doesNotMatch(svcRules[2]!, /statistic/);
  for (const p of pods) assert.ok(rules.includes(`-j DNAT --to-destination ${p}:80`), p);
  assert.match(
    rules,
    /-A KUBE-SERVICES -d 172\.30\.0\.41\/32 -p tcp -m comment --comment "ns1\/svc1:p80 cluster IP" -m tcp --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O/,
  );
  // Whole tables: each starts with its header and ends with COMMIT, so iptables-restore swaps them atomically.
  assert.deepEqual(
    rules.split('\n').filter((l) => l.startsWith('*') || l === 'COMMIT'),
    ['*filter', 'COMMIT', '*nat', 'COMMIT'],
  );
  assert.ok(!rules.includes('REJECT'));
});

test('iptables: one endpoint is an unconditional jump; none is a REJECT in filter and no KUBE-SVC chain', () => {
  const one = iptablesRules(svc, ['10.180.0.9']);
  assert.ok(!one.includes('statistic'));
  const none = iptablesRules(svc, []);
  assert.ok(!none.includes('KUBE-SVC-'));
  assert.match(none, /"ns1\/svc1:p80 has no endpoints" -m tcp --dport 80 -j REJECT/);
});

test('nftables: numgen random mod N vmap over endpoint chains, in one add/delete/define transaction', () => {
  const rules = nftablesRules(svc, pods);
  const lines = rules.split('\n');
  assert.deepEqual(lines.slice(0, 3), [
    'add table ip kube-proxy',
    'delete table ip kube-proxy',
    'table ip kube-proxy {',
  ]);
  const numgen = lines.find((l) => l.includes('numgen'))!;
  assert.match(
    numgen,
    /numgen random mod 3 vmap \{ 0 : goto endpoint-\S+, 1 : goto endpoint-\S+, 2 : goto endpoint-\S+ \};/,
  );
  for (const p of pods) assert.ok(rules.includes(`dnat to ${p}:80;`), p);
  assert.match(
    rules,
    /elements = \{ 172\.30\.0\.41 \. tcp \. 80 : goto service-[A-Z2-7]{8}-ns1\/svc1\/tcp\/p80 \};/,
  );
  assert.match(rules, /type nat hook output priority -100; policy accept;/);
  const none = nftablesRules(svc, []);
  assert.ok(!none.includes('numgen'));
  assert.match(none, /elements = \{ 172\.30\.0\.41 \. tcp \. 80 : goto reject-chain \};/);
});

test('bad input is refused with BED_INVALID_ARGUMENT before any rule is written', () => {
  const bad = (f: () => unknown) =>
    assert.throws(f, (e: unknown) => e instanceof BedError && e.code === 'BED_INVALID_ARGUMENT');
  bad(() => iptablesRules(svc, ['10.0.0.1', '10.0.0.1']));
  bad(() => iptablesRules(svc, ['not-an-ip']));
  bad(() => nftablesRules({ ...svc, clusterIP: '::1' }, []));
  bad(() => nftablesRules({ ...svc, name: 'Bad Name' }, []));
  bad(() => iptablesRules({ ...svc, port: 0 }, []));
});
