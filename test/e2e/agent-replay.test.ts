// --input-file semantics: a real capture replayed through the agent to a fake enricher.
// Every record arrives exactly as sent and in order, seqs increase, the replay is done only
// once everything is acknowledged, and the reader waits (no drops) while the buffer is full.
// The CLI: exit 0 when all is acknowledged, 1 when not by --input-timeout, 2 on bad usage;
// SIGTERM with live input spools what is unacknowledged and exits 0.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import {
  BULK,
  BULK_FRAMES,
  fixturePayloads,
  makeAgent,
  Producer,
  payload,
  stopAll,
  uniquePayloads,
  waitFor,
} from '../support/agent-harness';
import { FakeEnricher } from '../support/fake-enricher';

const fakes: FakeEnricher[] = [];
after(async () => {
  await stopAll();
  await Promise.all(fakes.map((f) => f.close()));
});

async function fake(opts: ConstructorParameters<typeof FakeEnricher>[0] = {}): Promise<FakeEnricher> {
  const f = await FakeEnricher.start(opts);
  fakes.push(f);
  return f;
}

function assertSeqsIncrease(f: FakeEnricher, incarnation: string): void {
  const seqs = f.batches.map((b) => b.seq);
  for (let i = 1; i < seqs.length; i++)
    assert.ok(seqs[i]! > seqs[i - 1]!, `seq ${seqs[i]} after ${seqs[i - 1]}`);
  assert.equal(seqs[0], 1);
  for (const b of f.batches) assert.equal(b.incarnation, incarnation);
}

test('replay: every record of the bulk fixture delivered exactly as sent, in order; done once all acked', async () => {
  const want = await fixturePayloads();
  assert.equal(want.length, BULK_FRAMES);
  const f = await fake({ ackDelayMs: 3 });
  const agent = makeAgent(f, { inputFile: BULK, batchRecords: 500 });
  await agent.start();
  assert.equal(await agent.replay(), true);
  // Done means acknowledged: nothing received is still waiting for its ack.
  assert.equal(f.acked.size, f.batches.length);
  assert.equal(agent.buffer.allAcked(), true);
  const got = uniquePayloads(f);
  assert.equal(got.length, want.length);
  for (let i = 0; i < want.length; i++) assert.ok(got[i]!.equals(want[i]!), `record ${i} differs`);
  assertSeqsIncrease(f, agent.options.incarnation);
  assert.ok(f.batches.every((b) => b.records.length <= 500 && b.sampleRate === 0));
  // Full batches, except where the linger sealed one while the reader waited for the disk.
  assert.ok(f.batches.length >= Math.ceil(BULK_FRAMES / 500) && f.batches.length < 40, `${f.batches.length}`);
  assert.ok(
    Object.values(agent.counters.dropped).every((n) => n === 0),
    JSON.stringify(agent.counters.dropped),
  );
  assert.equal(agent.client.stats.recordsAcked, BULK_FRAMES);
  await agent.stop();
});

test('replay: a buffer smaller than the file and slow acks pause the reader instead of dropping', async () => {
  const f = await fake({ ackDelayMs: 2, maxInFlight: 2 });
  const agent = makeAgent(f, { inputFile: BULK, bufferBytes: 16 * 1024, batchBytes: 4096 });
  let peak = 0;
  const poll = setInterval(() => (peak = Math.max(peak, agent.buffer.memBytes)), 1);
  await agent.start();
  assert.equal(await agent.replay(), true);
  clearInterval(poll);
  assert.equal(uniquePayloads(f).length, BULK_FRAMES);
  assert.equal(
    Object.values(agent.counters.dropped).reduce((a, b) => a + b),
    0,
  );
  // Bounded: the buffer plus at most one read block's worth of records.
  assert.ok(peak <= 16 * 1024 + 256 * 1024 + 4096, `peak ${peak}`);
  assert.ok(f.conns.every((c) => c.seqs.length === 0 || c.welcomedAt > 0));
  await agent.stop();
});

test('replay: not done while anything is unacknowledged; false when input-timeout runs out', async () => {
  const f = await fake({ manualAck: true });
  const agent = makeAgent(f, { inputFile: BULK, inputTimeoutMs: 400, drainTimeoutMs: 100 });
  await agent.start();
  const t0 = Date.now();
  assert.equal(await agent.replay(), false);
  assert.ok(Date.now() - t0 >= 390);
  assert.ok(f.batches.length > 0 && f.acked.size === 0);
  await agent.stop();

  const g = await fake({ manualAck: true });
  const b = makeAgent(g, { inputFile: BULK });
  await b.start();
  let done = false;
  const replay = b.replay().then((ok) => {
    done = true;
    return ok;
  });
  while (!done) {
    await new Promise((r) => setTimeout(r, 15));
    assert.ok(!done || g.batches.every((x) => g.acked.has(`${x.incarnation}/${x.seq}`)));
    g.ackAll();
  }
  assert.equal(await replay, true);
  assert.equal(uniquePayloads(g).length, BULK_FRAMES);
  await b.stop();
});

const MAIN = path.resolve(__dirname, '../../cli/main.js');

function cli(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, 'agent', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

test('CLI: --input-file exits 0 once everything is acknowledged', async () => {
  const f = await fake();
  const { code, stderr } = await cli([
    '--input-file',
    BULK,
    '--enricher',
    `127.0.0.1:${f.port}`,
    '--metrics-listen',
    '127.0.0.1:0',
    '--id',
    'cli-replay',
  ]);
  assert.equal(code, 0, stderr);
  assert.equal(uniquePayloads(f).length, BULK_FRAMES);
  assert.ok(f.batches.every((b) => f.acked.has(`${b.incarnation}/${b.seq}`)));
  assert.match(stderr, /"msg":"agent stopped"/);
});

test('CLI: --input-file exits 1 when the enricher never acknowledges before --input-timeout', async () => {
  const f = await fake({ refuse: true });
  const { code, stderr } = await cli([
    '--input-file',
    BULK,
    '--enricher',
    `127.0.0.1:${f.port}`,
    '--metrics-listen',
    '127.0.0.1:0',
    '--input-timeout',
    '0.5',
    '--drain-timeout',
    '0.2',
  ]);
  assert.equal(code, 1, stderr);
  assert.match(stderr, /LOST|not everything was acknowledged/);
});

test('CLI: SIGTERM with the enricher down spools what is unacknowledged and exits 0', async () => {
  const f = await fake({ refuse: true });
  const dir = mkdtempSync(path.join(tmpdir(), 'agent-cli-'));
  const sock = path.join(dir, 'dnstap.sock');
  const spool = path.join(dir, 'spool');
  const child = spawn(
    process.execPath,
    [MAIN, 'agent', '--dnstap-socket', sock, '--enricher', `127.0.0.1:${f.port}`, '--spool-dir', spool],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, SNOWTAP_METRICS_LISTEN: '127.0.0.1:0', SNOWTAP_DRAIN_TIMEOUT: '0.2' },
    },
  );
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  try {
    await waitFor(() => existsSync(sock), 'the dnstap socket');
    const p = await Producer.open(sock);
    await p.send(Array.from({ length: 50 }, (_, i) => payload(i)));
    await p.stop();
    child.kill('SIGTERM');
    assert.equal(await exited, 0, stderr);
    assert.match(stderr, /"spooled":50,"lost":0/);
    assert.ok(readdirSync(spool).some((x) => x.endsWith('.batch')));
    assert.equal(existsSync(sock), false, 'socket file removed');
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('CLI: bad usage exits 2 naming the problem', async () => {
  const cases: [string[], RegExp][] = [
    [['--enricher', '127.0.0.1:7400'], /needs an input/],
    [['--dnstap-socket', '/tmp/x.sock'], /--enricher HOST:PORT is required/],
    [['--dnstap-socket', '/tmp/x.sock', '--discovery', 'k8s://ns'], /expected k8s:\/\/NAMESPACE\/SERVICE/],
    [['--dnstap-socket', '/tmp/x.sock', '--discovery', 'k8s://Bad_NS/snowtap'], /--discovery/],
    [
      ['--dnstap-socket', '/tmp/x.sock', '--discovery', 'k8s://dns/snowtap', '--discovery-mode', 'sideways'],
      /--discovery-mode/,
    ],
    [['--dnstap-socket', '/tmp/x.sock', '--enricher', 'nope'], /--enricher: expected HOST:PORT/],
    [['--dnstap-socket', '/tmp/x.sock', '--enricher', '127.0.0.1:1', '--when-full', 'panic'], /--when-full/],
    [['--dnstap-socket', '/tmp/x.sock', '--enricher', '127.0.0.1:1', '--id', 'a/b'], /agentId must be/],
    [
      ['--dnstap-socket', '/tmp/x.sock', '--enricher', '127.0.0.1:1', '--tls-cert', '/x'],
      /--tls-cert and --tls-key/,
    ],
    [
      ['--dnstap-socket', '/tmp/x.sock', '--enricher', '127.0.0.1:1', '--auth-token-file', '/nonexistent'],
      /--auth-token-file \/nonexistent: cannot read/,
    ],
    [
      ['--input-file', BULK, '--dnstap-tcp', '127.0.0.1:0', '--enricher', '127.0.0.1:1'],
      /cannot be combined/,
    ],
    [['--dnstap-socket', '/tmp/x.sock', '--enricher', '127.0.0.1:1', '--bogus'], /unknown option '--bogus'/],
  ];
  for (const [args, re] of cases) {
    const { code, stderr } = await cli(args);
    assert.equal(code, 2, `${args.join(' ')}: ${stderr}`);
    assert.match(stderr, re, args.join(' '));
  }
  const help = await cli(['--help']);
  assert.equal(help.code, 0);
});
