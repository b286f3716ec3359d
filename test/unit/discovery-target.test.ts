import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DiscoveryError, isTargetError } from '../../agent/discovery/errors';
import {
  endpointSlicesPath,
  formatDiscoveryTarget,
  parseDiscoveryTarget,
  serviceLabelSelector,
} from '../../agent/discovery/target';

test('k8s://NAMESPACE/SERVICE and the optional port name or number', () => {
  assert.deepEqual(parseDiscoveryTarget('k8s://snowtap/enricher'), {
    namespace: 'snowtap',
    service: 'enricher',
  });
  assert.deepEqual(parseDiscoveryTarget('k8s://snowtap/enricher:link'), {
    namespace: 'snowtap',
    service: 'enricher',
    port: 'link',
  });
  assert.deepEqual(parseDiscoveryTarget('K8S://dns-1/e2:7400'), {
    namespace: 'dns-1',
    service: 'e2',
    port: 7400,
  });
  assert.equal(parseDiscoveryTarget('k8s://0ns/a').namespace, '0ns', 'namespaces may start with a digit');
  assert.equal(parseDiscoveryTarget(`k8s://${'n'.repeat(63)}/${'s'.repeat(63)}`).service, 's'.repeat(63));
  assert.equal(parseDiscoveryTarget('k8s://a/b:http-2').port, 'http-2');
  assert.equal(parseDiscoveryTarget('k8s://a/b:65535').port, 65535);
});

test('the selector and path the watcher uses', () => {
  const t = parseDiscoveryTarget('k8s://snowtap/enricher:link');
  assert.equal(endpointSlicesPath(t), '/apis/discovery.k8s.io/v1/namespaces/snowtap/endpointslices');
  assert.equal(serviceLabelSelector(t), 'kubernetes.io/service-name=enricher');
  assert.equal(formatDiscoveryTarget(t), 'k8s://snowtap/enricher:link');
  assert.equal(formatDiscoveryTarget(parseDiscoveryTarget('K8S://a/b')), 'k8s://a/b');
});

const BAD: Array<[string, string]> = [
  ['snowtap/enricher', 'DISCOVERY_TARGET_SCHEME'],
  ['http://snowtap/enricher', 'DISCOVERY_TARGET_SCHEME'],
  ['k8s:/snowtap/enricher', 'DISCOVERY_TARGET_SCHEME'],
  ['k8s://', 'DISCOVERY_TARGET_SHAPE'],
  ['k8s://snowtap', 'DISCOVERY_TARGET_SHAPE'],
  ['k8s://snowtap/', 'DISCOVERY_TARGET_SHAPE'],
  ['k8s:///enricher', 'DISCOVERY_TARGET_SHAPE'],
  ['k8s://snowtap/enricher/extra', 'DISCOVERY_TARGET_SHAPE'],
  ['k8s://snowtap/enricher?x=1', 'DISCOVERY_TARGET_SHAPE'],
  ['k8s://snowtap/enricher#link', 'DISCOVERY_TARGET_SHAPE'],
  ['k8s://user@snowtap/enricher', 'DISCOVERY_TARGET_SHAPE'],
  ['k8s://snowtap/enr icher', 'DISCOVERY_TARGET_SHAPE'],
  ['k8s://Snowtap/enricher', 'DISCOVERY_TARGET_NAMESPACE'],
  ['k8s://-ns/enricher', 'DISCOVERY_TARGET_NAMESPACE'],
  ['k8s://ns-/enricher', 'DISCOVERY_TARGET_NAMESPACE'],
  ['k8s://my.ns/enricher', 'DISCOVERY_TARGET_NAMESPACE'],
  [`k8s://${'n'.repeat(64)}/enricher`, 'DISCOVERY_TARGET_NAMESPACE'],
  ['k8s://snowtap/Enricher', 'DISCOVERY_TARGET_SERVICE'],
  ['k8s://snowtap/1enricher', 'DISCOVERY_TARGET_SERVICE'],
  ['k8s://snowtap/enricher_1', 'DISCOVERY_TARGET_SERVICE'],
  ['k8s://snowtap/:link', 'DISCOVERY_TARGET_SERVICE'],
  [`k8s://snowtap/${'s'.repeat(64)}`, 'DISCOVERY_TARGET_SERVICE'],
  ['k8s://snowtap/enricher:', 'DISCOVERY_TARGET_PORT'],
  ['k8s://snowtap/enricher:0', 'DISCOVERY_TARGET_PORT'],
  ['k8s://snowtap/enricher:65536', 'DISCOVERY_TARGET_PORT'],
  ['k8s://snowtap/enricher:07400', 'DISCOVERY_TARGET_PORT'],
  ['k8s://snowtap/enricher:Link', 'DISCOVERY_TARGET_PORT'],
  ['k8s://snowtap/enricher:link--2', 'DISCOVERY_TARGET_PORT'],
  ['k8s://snowtap/enricher:-link', 'DISCOVERY_TARGET_PORT'],
  ['k8s://snowtap/enricher:a-very-long-port-name', 'DISCOVERY_TARGET_PORT'],
  ['k8s://snowtap/enricher:link:2', 'DISCOVERY_TARGET_PORT'],
];

for (const [text, code] of BAD) {
  test(`rejects ${JSON.stringify(text)} with ${code}`, () => {
    assert.throws(
      () => parseDiscoveryTarget(text),
      (err: unknown) => {
        assert.ok(err instanceof DiscoveryError);
        assert.equal(err.code, code);
        assert.ok(isTargetError(err));
        assert.ok(err.message.startsWith(`--discovery ${JSON.stringify(text)}: `), err.message);
        return true;
      },
    );
  });
}

test('the message names the problem', () => {
  assert.throws(
    () => parseDiscoveryTarget('k8s://Snowtap/enricher'),
    /namespace "Snowtap" is not a DNS-1123 label/,
  );
  assert.throws(() => parseDiscoveryTarget('k8s://snowtap/9e'), /service "9e" is not a valid Service name/);
  assert.throws(() => parseDiscoveryTarget('k8s://a/b:99999'), /port 99999 is not a port number 1\.\.65535/);
});
