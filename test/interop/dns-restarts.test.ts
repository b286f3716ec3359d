// DNS server restarts with the agent attached (issue 10): a real Unbound (its test/peers
// configuration, local data, dnstap to the agent's unix socket) answers dnsperf continuously
// while it is stopped (SIGTERM, and every other time SIGKILL: a crash) and started again: 20
// times with dnstap on the agent's unix socket (a sidecar), 10 times over TCP (a standalone agent). After each start, dnstap frames must
// reach the agent again within a bound (no stall: the agent's socket stays usable, the new
// stream is accepted); over the 20 restarts the agent's open descriptors and RSS stay flat (no
// leaked connection or buffer), exactly one input connection is open at the end, and every
// record the agent received is acknowledged and written by the enricher.
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { findBinary, freePort, PEERS_DIR, requireInterop } from '../support/peers';
import {
  committedRows,
  exitWithin,
  freeTcpPort,
  metric,
  startAgent,
  startEnricher,
  tmpDir,
  waitReady,
  waitUntil,
} from '../support/pipeline-procs';

const RESTARTS = 20;
const RECOVERY_BOUND_MS = 5000; // start of the DNS server -> frames counted by the agent again
const UP_MS = 700; // serving time between restarts
const QPS = 1000;

function fdCount(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

function renderUnbound(dir: string, dest: string, port: number): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(
      'bash',
      [path.join(PEERS_DIR, 'run-producer.sh'), 'unbound', dest, '0', '0'],
      { env: { ...process.env, RENDER_ONLY: '1', WORKDIR: dir, DNS_PORT: String(port) } },
      (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout.trim()),
    ),
  );
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

// The unix socket (a sidecar) 20 times; TCP (what a standalone agent serves) 10 times.
const CASES = [
  { transport: 'unix', restarts: RESTARTS },
  { transport: 'tcp', restarts: RESTARTS / 2 },
] as const;

for (const { transport, restarts } of CASES)
  test(`Unbound (dnstap over ${transport}) restarted ${restarts} times under load with the agent attached: no stall, no fd or memory leak`, {
    timeout: 150_000,
  }, async (t) => {
    if (!requireInterop(t, ['unbound', 'dnsperf'])) return;
    const dir = tmpDir(t, 'snowtap-dnsrestart-');
    const enricher = await startEnricher(t, path.join(dir, 'out'));
    const sock = path.join(dir, 'dnstap.sock');
    const tcpPort = await freeTcpPort();
    const agent = await startAgent(t, [
      ...(transport === 'unix' ? ['--dnstap-socket', sock] : ['--dnstap-tcp', `127.0.0.1:${tcpPort}`]),
      '--enricher',
      `127.0.0.1:${enricher.linkPort}`,
      '--switch-interval',
      '2',
    ]);
    const pid = agent.child.pid!;
    const m = (name: string) => metric(agent.metricsPort, `snowtap_agent_${name}`);
    await waitReady(agent.metricsPort);

    const port = await freePort({ udp: true });
    const conf = await renderUnbound(
      path.join(dir, 'unbound'),
      transport === 'unix' ? `unix:${sock}` : `tcp:127.0.0.1:${tcpPort}`,
      port,
    );
    const unboundBin = findBinary('unbound')!;
    let unbound: ChildProcess | null = null;
    let unboundLog = '';
    const startUnbound = () => {
      const c = spawn(unboundBin, ['-d', '-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
      c.stderr!.on('data', (d: Buffer) => {
        unboundLog = (unboundLog + d.toString()).slice(-8000);
      });
      unbound = c;
      return c;
    };
    const stopUnbound = async (signal: NodeJS.Signals = 'SIGTERM') => {
      const c = unbound!;
      if (c.exitCode !== null || c.signalCode !== null) throw new Error(`unbound died: ${unboundLog}`);
      const exited = new Promise((r) => c.once('exit', r));
      c.kill(signal);
      await exited;
    };
    t.after(() => {
      const c = unbound as ChildProcess | null;
      if (c && c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    });

    // Load: dnsperf at a steady rate for the whole run; its queries time out while Unbound is down.
    const qf = path.join(dir, 'queries.txt');
    const names: string[] = [];
    for (let i = 0; i < 50_000; i++) names.push(`r${i}.w.tap.test A`);
    fs.writeFileSync(qf, `${names.join('\n')}\n`);
    startUnbound();
    await waitUntil(
      async () => (await m('input_connections')) === 1,
      'unbound connected to the agent',
      10_000,
    );
    const dnsperf = spawn(
      findBinary('dnsperf')!,
      ['-s', '127.0.0.1', '-p', String(port), '-d', qf, '-l', '600', '-Q', String(QPS), '-c', '4', '-t', '1'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let perfOut = '';
    dnsperf.stdout!.on('data', (d: Buffer) => {
      perfOut += d.toString();
    });
    t.after(() => {
      if (dnsperf.exitCode === null && dnsperf.signalCode === null) dnsperf.kill('SIGKILL');
    });
    await waitUntil(async () => (await m('records_in_total')) > 2 * QPS, 'frames flowing', 10_000);

    // Warm-up restarts, then the baseline: descriptors and memory once the paths are exercised.
    const recoveries: number[] = [];
    const fds: number[] = [];
    const rss: number[] = [];
    let fdBefore = 0;
    let rssBefore = 0;
    let kills = 0;
    for (let i = 0; i < restarts; i++) {
      // Every other stop is a crash (SIGKILL): the stream ends without STOP, maybe mid-frame.
      const crash = i % 2 === 1;
      if (crash) kills++;
      await stopUnbound(crash ? 'SIGKILL' : 'SIGTERM');
      const inAtStop = await m('records_in_total');
      const t0 = Date.now();
      startUnbound();
      await waitUntil(
        async () => (await m('records_in_total')) > inAtStop && (await m('input_connections')) === 1,
        `frames again after restart ${i + 1}`,
        RECOVERY_BOUND_MS,
      ).catch((err) => {
        throw new Error(`${(err as Error).message}; unbound log: ${unboundLog.slice(-2000)}`);
      });
      recoveries.push(Date.now() - t0);
      await new Promise((r) => setTimeout(r, UP_MS));
      fds.push(fdCount(pid));
      rss.push(rssMiB(pid));
      if (i === 1) {
        fdBefore = fds[i]!;
        rssBefore = rss[i]!;
      }
    }
    const fdAfter = fds.at(-1)!;
    const rssAfter = rss.at(-1)!;

    dnsperf.kill('SIGINT');
    await new Promise((r) => dnsperf.once('exit', r));
    await stopUnbound();
    const received = await m('records_in_total');
    await waitUntil(
      async () => (await m('records_acked_total')) === received,
      'every record acknowledged',
      30_000,
    );
    const connections = await m('input_connections_total');
    // Labelled by kind: no series until the first error.
    const protocolErrors = await m('input_protocol_errors_total').catch(() => 0);
    const dropped = await m('records_dropped_total');
    agent.child.kill('SIGTERM');
    assert.equal(await exitWithin(agent, 15_000, 'agent'), 0);
    enricher.child.kill('SIGTERM');
    assert.equal(await exitWithin(enricher, 25_000, 'enricher'), 0);
    const rows = await committedRows(enricher.outputDir);

    const sent = /Queries sent:\s+(\d+)/.exec(perfOut)?.[1];
    const completed = /Queries completed:\s+(\d+)/.exec(perfOut)?.[1];
    t.diagnostic(
      `${transport}: ${restarts} restarts (${kills} by SIGKILL; input protocol errors ${protocolErrors}): recovery (start -> frames at the agent) median ${median(recoveries)} ms, max ${Math.max(...recoveries)} ms; ` +
        `agent fds ${fdBefore} -> ${fdAfter} (per restart: ${fds.join(' ')}); RSS ${rssBefore.toFixed(1)} -> ${rssAfter.toFixed(1)} MiB ` +
        `(max ${Math.max(...rss).toFixed(1)}); dnsperf sent ${sent} completed ${completed}; agent received ${received} frames over ${connections} input connections, ${rows.length} rows`,
    );
    assert.equal(recoveries.length, restarts);
    assert.ok(fdAfter <= fdBefore + 2, `agent descriptors ${fdBefore} -> ${fdAfter}: ${fds.join(' ')}`);
    assert.ok(rssAfter - rssBefore < 24, `agent RSS ${rssBefore.toFixed(1)} -> ${rssAfter.toFixed(1)} MiB`);
    assert.equal(connections, restarts + 1, 'one input connection per Unbound start');
    assert.ok(
      protocolErrors <= kills,
      `input protocol errors ${protocolErrors}: at most one per crash (${kills})`,
    );
    assert.equal(dropped, 0, 'dropped');
    assert.equal(rows.length, received, 'every record the agent received is a row');
    assert.equal(new Set(rows.map((r) => r.record_id)).size, rows.length, 'no duplicate record_id');
  });
