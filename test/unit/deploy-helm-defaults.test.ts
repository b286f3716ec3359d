// The chart's documented defaults (values.yaml) are the product's defaults for every option
// the chart exposes: one default per option (issue 12, step 3). Reads values.yaml as data;
// the CLI tables carry the library defaults (cli-config.test.ts checks that link).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import YAML from 'yaml';
import { AGENT_OPTIONS } from '../../cli/agent';
import { ENRICHER_OPTIONS } from '../../cli/enricher';
import type { OptionSpec } from '../../cli/options';
import { CHART_DIR } from '../support/helm';

// biome-ignore lint/suspicious/noExplicitAny: values.yaml is walked by path
const values: any = YAML.parse(readFileSync(path.join(CHART_DIR, 'values.yaml'), 'utf8'));

function cliDefault(table: readonly OptionSpec[], name: string): unknown {
  const s = table.find((x) => x.name === name);
  assert.ok(s, `option --${name}`);
  return s.default;
}

const port = (hostPort: unknown) => Number(String(hostPort).split(':').pop());
const host = (hostPort: unknown) => String(hostPort).split(':')[0];

test('agent values: documented defaults equal the agent defaults', () => {
  const a = values.agent;
  const d = (name: string) => cliDefault(AGENT_OPTIONS, name);
  assert.equal(a.switchInterval, d('switch-interval'), 'agent.switchInterval');
  assert.equal(String(a.activeConnections), d('active-connections'), 'agent.activeConnections');
  assert.equal(a.bufferBytes, d('buffer-bytes'), 'agent.bufferBytes');
  assert.equal(a.whenFull, d('when-full'), 'agent.whenFull');
  assert.equal(a.runtime, d('runtime'), 'agent.runtime');
  assert.equal(a.spool.maxBytes, d('spool-max-bytes'), 'agent.spool.maxBytes');
  assert.equal(a.sample, d('sample'), 'agent.sample');
  assert.equal(a.metricsPort, port(d('metrics-listen')), 'agent.metricsPort');
  assert.equal(a.socketMode, d('dnstap-socket-mode'), 'agent.socketMode');
  assert.equal(a.privacy.maskClientIpv4, d('mask-client-ipv4'), 'agent.privacy.maskClientIpv4');
  assert.equal(a.privacy.maskClientIpv6, d('mask-client-ipv6'), 'agent.privacy.maskClientIpv6');
  assert.equal(a.privacy.dropEcs, d('drop-ecs'), 'agent.privacy.dropEcs');
  assert.equal(values.link.secretReloadInterval, d('secret-reload-interval'), 'link.secretReloadInterval');
});

test('agent values: the spool emptyDir leaves headroom above spool.maxBytes', () => {
  const m = /^(\d+)Mi$/.exec(values.agent.spool.sizeLimit);
  assert.ok(m, `sizeLimit in Mi: ${values.agent.spool.sizeLimit}`);
  assert.ok(Number(m[1]) * 1024 * 1024 > values.agent.spool.maxBytes);
});

test('enricher values: documented defaults equal the enricher defaults', () => {
  const e = values.enricher;
  const d = (name: string) => cliDefault(ENRICHER_OPTIONS, name);
  assert.equal(values.link.port, port(d('listen')), 'link.port');
  assert.equal(e.listenHost, host(d('listen')), 'enricher.listenHost');
  assert.equal(e.metricsPort, port(d('metrics-listen')), 'enricher.metricsPort');
  assert.equal(e.policy.interval, d('policy-interval'), 'enricher.policy.interval');
  assert.equal(e.rotate.maxRows, d('rotate-max-rows'), 'enricher.rotate.maxRows');
  assert.equal(e.rotate.maxBytes, d('rotate-max-bytes'), 'enricher.rotate.maxBytes');
  assert.equal(e.rotate.maxAge, d('rotate-max-age'), 'enricher.rotate.maxAge');
  assert.equal(e.drainTimeout, d('drain-timeout'), 'enricher.drainTimeout');
  assert.equal(e.privacy.maskClientIpv4, d('mask-client-ipv4'), 'enricher.privacy.maskClientIpv4');
  assert.equal(e.privacy.maskClientIpv6, d('mask-client-ipv6'), 'enricher.privacy.maskClientIpv6');
  assert.equal(e.privacy.dropEcs, d('drop-ecs'), 'enricher.privacy.dropEcs');
  assert.equal(values.link.secretReloadInterval, d('secret-reload-interval'), 'link.secretReloadInterval');
  assert.deepEqual(e.columns, [], 'enricher.columns: all');
  assert.equal(e.partition.by, d('partition-by'), 'enricher.partition.by');
  assert.equal(e.partition.maxOpenTenants, d('max-open-tenants'), 'enricher.partition.maxOpenTenants');
  assert.equal(e.partition.tenantChunkRate, d('tenant-chunk-rate'), 'enricher.partition.tenantChunkRate');
  const od = e.overloadDrain;
  assert.equal(od.enabled, d('overload-drain'), 'enricher.overloadDrain.enabled');
  assert.equal(od.high, d('overload-high'), 'enricher.overloadDrain.high');
  assert.equal(od.low, d('overload-low'), 'enricher.overloadDrain.low');
  assert.equal(od.enterSeconds, d('overload-enter'), 'enricher.overloadDrain.enterSeconds');
  assert.equal(od.leaveSeconds, d('overload-leave'), 'enricher.overloadDrain.leaveSeconds');
  assert.equal(od.fraction, d('overload-drain-fraction'), 'enricher.overloadDrain.fraction');
  assert.equal(od.intervalSeconds, d('overload-drain-interval'), 'enricher.overloadDrain.intervalSeconds');
  assert.equal(od.cooldownSeconds, d('overload-drain-cooldown'), 'enricher.overloadDrain.cooldownSeconds');
  // Not compared: outputDir is where the blob volume is mounted, not a tunable; gzip is left to
  // the --compression change (issue 5), which replaces the option.
  // 0 is the chart's "not set": the enricher's own default applies, nothing is restated.
  assert.equal(e.maxConnections, 0, 'enricher.maxConnections');
});
