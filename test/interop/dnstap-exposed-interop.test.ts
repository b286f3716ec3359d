// Exposed dnstap inputs (issue 10) with real senders from Debian, through the real
// executables: the Go dnstap CLI (golang-framestream, the library CoreDNS's dnstap plugin
// uses) over TCP (-T) and a unix socket (-U), fstrm_replay (libfstrm) over TCP, Unbound
// answering dnsperf's queries over TCP dnstap, a source the allow-list refuses, and a
// slowloris flood next to a real sender. Options come from flags and
// SNOWTAP_* variables alike. TLS has its own tests (test/e2e/dnstap-exposed.test.ts): neither
// sender speaks TLS. Missing binaries skip with the package, or fail under
// SNOWTAP_REQUIRE_INTEROP=1.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { runAttack } from '../../loadtest/attack';
import { binary } from '../support/fstrm-server-helpers';
import { requireInterop, runProducer } from '../support/peers';
import {
  freeTcpPort,
  metric,
  startAgent,
  startEnricher,
  startSnowtap,
  tmpDir,
  waitUntil,
} from '../support/pipeline-procs';

const REPO = path.resolve(__dirname, '../../..');
const DIST = path.resolve(__dirname, '../..');
const BULK = path.join(REPO, 'test/fixtures/unbound-local-unix-bulk.fstrm');
const BULK_FRAMES = 13002;
const DNSTAP_PKG = 'golang-github-dnstap-golang-dnstap-cli';

/** Runs a sender to its end (or kills it after ms); resolves with its exit code. */
function run(
  t: Parameters<typeof tmpDir>[0],
  cmd: string,
  args: string[],
  ms = 30_000,
): Promise<number | null> {
  const child = spawn(cmd, args, { stdio: 'ignore' });
  const timer = setTimeout(() => child.kill('SIGKILL'), ms);
  t.after(() => {
    clearTimeout(timer);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return new Promise((resolve) =>
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    }),
  );
}

async function agentOn(t: Parameters<typeof tmpDir>[0], args: string[]) {
  const enricher = await startEnricher(t, path.join(tmpDir(t, 'exposed-'), 'out'));
  const agent = await startAgent(t, ['--enricher', `127.0.0.1:${enricher.linkPort}`, ...args]);
  await waitUntil(async () => (await fetch(`http://127.0.0.1:${agent.metricsPort}/healthz`)).ok, 'agent up');
  return agent;
}

test('Go dnstap CLI -T into agent --dnstap-tcp with --dnstap-allow 127.0.0.1/32: every frame arrives', {
  timeout: 60_000,
}, async (t) => {
  const dnstap = binary(t, '/usr/bin/dnstap', DNSTAP_PKG);
  if (dnstap === null) return;
  const port = await freeTcpPort();
  const agent = await agentOn(t, ['--dnstap-tcp', `127.0.0.1:${port}`, '--dnstap-allow', '127.0.0.1/32']);
  assert.equal(await run(t, dnstap, ['-r', BULK, '-T', `127.0.0.1:${port}`]), 0);
  await waitUntil(
    async () => (await metric(agent.metricsPort, 'snowtap_agent_records_in_total')) === BULK_FRAMES,
    'every frame at the agent',
  );
});

test('Go dnstap CLI -U into agent --dnstap-socket with --dnstap-socket-mode 0660: the mode holds, frames arrive', {
  timeout: 60_000,
}, async (t) => {
  const dnstap = binary(t, '/usr/bin/dnstap', DNSTAP_PKG);
  if (dnstap === null) return;
  const sock = path.join(tmpDir(t, 'exposed-sock-'), 'dnstap.sock');
  const agent = await agentOn(t, ['--dnstap-socket', sock, '--dnstap-socket-mode', '0660']);
  await waitUntil(() => statSync(sock, { throwIfNoEntry: false })?.isSocket() === true, 'the socket file');
  assert.equal(statSync(sock).mode & 0o777, 0o660);
  assert.equal(await run(t, dnstap, ['-r', BULK, '-U', sock]), 0);
  await waitUntil(
    async () => (await metric(agent.metricsPort, 'snowtap_agent_records_in_total')) === BULK_FRAMES,
    'every frame at the agent',
  );
});

test('fstrm_replay into enricher --dnstap-listen with SNOWTAP_DNSTAP_ALLOW and SNOWTAP_DNSTAP_MAX_CONNECTIONS', {
  timeout: 60_000,
}, async (t) => {
  const replay = binary(t, '/usr/bin/fstrm_replay', 'fstrm-bin');
  if (replay === null) return;
  const [link, dnstapPort, metrics] = [await freeTcpPort(), await freeTcpPort(), await freeTcpPort()];
  const out = path.join(tmpDir(t, 'exposed-'), 'out');
  startSnowtap(
    t,
    [
      'enricher',
      '--listen',
      `127.0.0.1:${link}`,
      '--dnstap-listen',
      `127.0.0.1:${dnstapPort}`,
      '--metrics-listen',
      `127.0.0.1:${metrics}`,
      '--output-dir',
      out,
    ],
    metrics,
    { SNOWTAP_DNSTAP_ALLOW: '127.0.0.0/8,::1', SNOWTAP_DNSTAP_MAX_CONNECTIONS: '2' },
  );
  await waitUntil(async () => (await fetch(`http://127.0.0.1:${metrics}/readyz`)).ok, 'enricher ready');
  const args = ['-t', 'protobuf:dnstap.Dnstap', '-a', '127.0.0.1', '-p', String(dnstapPort), '-r', BULK];
  assert.equal(await run(t, replay, args), 0);
  await waitUntil(
    async () =>
      (await metric(metrics, 'snowtap_enricher_records_received_total{input="dnstap"}')) === BULK_FRAMES,
    'every frame at the enricher',
  );
});

test('a source outside --dnstap-allow: the Go dnstap CLI gets nothing through; refusals counted by reason', {
  timeout: 60_000,
}, async (t) => {
  const dnstap = binary(t, '/usr/bin/dnstap', DNSTAP_PKG);
  if (dnstap === null) return;
  const port = await freeTcpPort();
  const agent = await agentOn(t, ['--dnstap-tcp', `127.0.0.1:${port}`, '--dnstap-allow', '10.0.0.0/8']);
  // The sender retries on its own; give it a few seconds, then stop it.
  await run(t, dnstap, ['-r', BULK, '-T', `127.0.0.1:${port}`], 4_000);
  const refused = await metric(agent.metricsPort, 'snowtap_agent_input_connections_refused_total');
  assert.ok(refused >= 1, `${refused} refused`);
  assert.equal(await metric(agent.metricsPort, 'snowtap_agent_records_in_total'), 0);
  const lines = agent
    .log()
    .split('\n')
    .filter((l) => l.includes('"dnstap connection refused"'));
  assert.equal(lines.length, 1, `one log line for ${refused} refusals`);
  assert.match(lines[0]!, /"reason":"not-allowed"/);
});

test('enricher --dnstap-listen under 2,000 slowloris handshakes: the Go dnstap CLI replay stays within 3x', {
  timeout: 90_000,
}, async (t) => {
  if (binary(t, '/usr/bin/dnstap', DNSTAP_PKG) === null) return;
  const r = await runAttack({
    target: 'enricher-dnstap',
    mode: 'slowloris',
    connections: 2_000,
    file: BULK,
    dist: DIST,
    replayTimeoutMs: 30_000,
  });
  // A dnstap replay takes ~0.1 s, mostly noise on a shared machine: compared to at least 0.5 s.
  assert.ok(r.underAttackMs <= 3 * Math.max(r.baselineMs, 500), JSON.stringify(r));
});

test('Unbound sends dnstap over TCP to agent --dnstap-tcp with --dnstap-allow and --dnstap-max-connections', {
  timeout: 120_000,
}, async (t) => {
  if (!requireInterop(t, ['unbound'])) return;
  const port = await freeTcpPort();
  const agent = await agentOn(t, [
    '--dnstap-tcp',
    `127.0.0.1:${port}`,
    '--dnstap-allow',
    '127.0.0.0/8',
    '--dnstap-max-connections',
    '8',
    '--dnstap-handshake-timeout',
    '5',
  ]);
  await waitUntil(() => agent.log().includes('"agent started"'), 'the agent listening');
  const run = await runProducer({ producer: 'unbound', dest: `tcp:127.0.0.1:${port}`, seconds: 2, qps: 200 });
  assert.equal(run.code, 0, run.stderr);
  const sent = run.dnsperf!.sent;
  // A client query and a client response per query, at least.
  await waitUntil(
    async () => (await metric(agent.metricsPort, 'snowtap_agent_records_in_total')) >= 2 * sent,
    'the dnstap of every query',
    30_000,
  );
});
