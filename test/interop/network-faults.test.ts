// Network faults between a real agent and a real enricher (issue 10, "Faults to survive"). The
// two run in network namespaces of their own, joined by a veth pair (10.77.0.1 agent side,
// 10.77.0.2 enricher side), so the faults touch nothing of the host: random packet loss with
// `iptables -m statistic` (this kernel has no netem), a link that goes down for a while, a
// half-open connection (the enricher's packets to the agent silently dropped: no RST, the
// enricher keeps writing what it receives), and delay with jitter through an in-test TCP
// proxy on the host's loopback. Each replays a capture and audits every record: 0 lost,
// duplicates only from re-sent batches; the agent's RSS is sampled (bounded memory) and the
// recovery time after the fault is measured.
//
// Needs root (namespaces, iptables). Without it the tests skip, and fail under
// SNOWTAP_REQUIRE_INTEROP=1.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { type TestContext, test } from 'node:test';
import { Netns, type NetnsProcess, runCommand } from '../../loadtest/netns';
import { interopMissing } from '../support/interop';
import {
  exitWithin,
  MAIN,
  metric,
  startAgent,
  startEnricher,
  tmpDir,
  waitUntil,
} from '../support/pipeline-procs';
import { auditDelivery, type Expected, expectedCapture } from '../support/record-audit';

const RECORDS = 100_000;
const BATCH = 1000;
const RATE = 10_000;
const KEEPALIVE_S = 2;
const AGENT_ADDR = '10.77.0.1';
const ENRICHER_ADDR = '10.77.0.2';
const LINK_PORT = 7000;
const METRICS_PORT = 9400;
const BUFFER_BYTES = 16 << 20;
/** RSS ceiling for an agent with a 16 MiB buffer: the runtime plus the buffer, with room. */
const RSS_BOUND_BYTES = 256 << 20;

function tools(t: TestContext): boolean {
  if (process.getuid?.() !== 0) return interopMissing(t, 'network namespaces need root');
  for (const tool of ['ip', 'iptables', 'curl']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return interopMissing(t, `${tool} is not installed`);
    }
  }
  return true;
}

interface Bed {
  agentNs: Netns;
  enrNs: Netns;
  agentIf: string;
  enricher: NetnsProcess;
  agent: NetnsProcess;
  outputDir: string;
  want: Expected;
  agentLog: () => string;
  enricherLog: () => string;
}

function logOf(p: NetnsProcess): () => string {
  let s = '';
  p.child.stderr?.on('data', (d: Buffer) => {
    s += d.toString();
  });
  p.child.stdout?.resume();
  return () => s;
}

/** One metric (summed over labels) of a process inside `ns`, through curl in that namespace. */
async function nsMetric(ns: Netns, port: number, name: string): Promise<number> {
  const { stdout } = await ns.run(['curl', '-sf', '--max-time', '2', `http://127.0.0.1:${port}/metrics`]);
  let sum = 0;
  let seen = false;
  for (const line of stdout.split('\n')) {
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) {
      sum += Number(line.slice(line.lastIndexOf(' ') + 1));
      seen = true;
    }
  }
  if (!seen) throw new Error(`metric ${name} not found`);
  return sum;
}

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** Agent counters and RSS, sampled until stopped (they vanish when the agent exits). */
function watch(bed: Bed) {
  const last = { acked: 0, resent: 0, maxRss: 0 };
  let busy = false;
  const timer = setInterval(async () => {
    if (busy) return;
    busy = true;
    try {
      last.maxRss = Math.max(last.maxRss, rssBytes(bed.agent.pid));
      last.acked = await nsMetric(bed.agentNs, METRICS_PORT, 'snowtap_agent_records_acked_total');
      last.resent = await nsMetric(bed.agentNs, METRICS_PORT, 'snowtap_agent_batches_resent_total');
    } catch {
      // exited, or a scrape timed out under the fault: keep the last values
    } finally {
      busy = false;
    }
  }, 200);
  // Never what keeps the test process alive: a test that fails before stop() must not hang the file.
  timer.unref();
  return { last, stop: () => clearInterval(timer) };
}

async function bed(t: TestContext, label: string, agentExtra: string[] = []): Promise<Bed> {
  const dir = tmpDir(t, `snowtap-net-${label}-`);
  const want = await expectedCapture(dir, RECORDS);
  const agentNs = await Netns.create(`${label}a`);
  t.after(() => agentNs.remove());
  const enrNs = await Netns.create(`${label}e`);
  t.after(() => enrNs.remove());
  const suffix = Math.random().toString(36).slice(2, 7);
  const agentIf = `sta${suffix}`;
  const enrIf = `ste${suffix}`;
  await runCommand([
    'ip',
    'link',
    'add',
    agentIf,
    'netns',
    agentNs.name,
    'type',
    'veth',
    'peer',
    'name',
    enrIf,
    'netns',
    enrNs.name,
  ]);
  await agentNs.ip(['addr', 'add', `${AGENT_ADDR}/30`, 'dev', agentIf]);
  await enrNs.ip(['addr', 'add', `${ENRICHER_ADDR}/30`, 'dev', enrIf]);
  await agentNs.ip(['link', 'set', agentIf, 'up']);
  await enrNs.ip(['link', 'set', enrIf, 'up']);
  const outputDir = path.join(dir, 'out');
  const env = { ...process.env, SNOWTAP_LOG_LEVEL: 'info' };
  const enricher = enrNs.spawn(
    [
      process.execPath,
      MAIN,
      'enricher',
      '--listen',
      `${ENRICHER_ADDR}:${LINK_PORT}`,
      '--metrics-listen',
      `127.0.0.1:${METRICS_PORT}`,
      '--output-dir',
      outputDir,
      '--id',
      'enr-net',
      '--rotate-max-age',
      '1',
      '--keepalive-interval',
      String(KEEPALIVE_S),
    ],
    { env },
  );
  const enricherLog = logOf(enricher);
  await waitUntil(async () => {
    await enrNs.run(['curl', '-sf', `http://127.0.0.1:${METRICS_PORT}/readyz`]);
    return true;
  }, 'enricher ready');
  const agent = agentNs.spawn(
    [
      process.execPath,
      MAIN,
      'agent',
      '--id',
      'agent-net',
      '--metrics-listen',
      `127.0.0.1:${METRICS_PORT}`,
      '--input-file',
      want.file,
      '--enricher',
      `${ENRICHER_ADDR}:${LINK_PORT}`,
      '--batch-records',
      String(BATCH),
      '--rate-limit',
      String(RATE),
      '--buffer-bytes',
      String(BUFFER_BYTES),
      '--handshake-timeout',
      '3',
      ...agentExtra,
    ],
    { env },
  );
  const agentLog = logOf(agent);
  return { agentNs, enrNs, agentIf, enricher, agent, outputDir, want, agentLog, enricherLog };
}

async function finish(b: Bed, w: ReturnType<typeof watch>, what: string) {
  const code = await Promise.race([
    b.agent.exited.then((e) => e.code),
    new Promise<string>((r) => setTimeout(() => r('timeout'), 120_000)),
  ]);
  w.stop();
  assert.equal(code, 0, `agent replay exits 0 (${what}); log tail:\n${b.agentLog().slice(-2000)}`);
  const stopped = await b.enricher.stop('SIGTERM', 30_000);
  assert.equal(stopped.code, 0, 'enricher drains and exits 0');
  const d = await auditDelivery([b.outputDir], b.want);
  assert.ok(w.last.maxRss < RSS_BOUND_BYTES, `agent RSS ${w.last.maxRss} stays under ${RSS_BOUND_BYTES}`);
  // The agent may finish and exit between two scrapes right after re-sending: its last word on
  // re-sent batches is the 'agent stopped' log line.
  const stoppedLine = /"resent":(\d+)[^\n]*"agent stopped"/.exec(b.agentLog());
  if (stoppedLine) w.last.resent = Math.max(w.last.resent, Number(stoppedLine[1]));
  assert.ok(
    d.duplicates <= w.last.resent * BATCH,
    `duplicates ${d.duplicates} within re-sent batches (${w.last.resent})`,
  );
  return d;
}

const acked = (b: Bed) => nsMetric(b.agentNs, METRICS_PORT, 'snowtap_agent_records_acked_total');

/** Time until the agent's acknowledged count moves past `from`. */
async function timeToProgress(b: Bed, from: number, since: number): Promise<number> {
  // A replaying agent exits 0 once everything is acknowledged: that is progress too (it can
  // finish between two scrapes once the path is back; finish() checks the exit code).
  let done = false;
  void b.agent.exited.then(() => {
    done = true;
  });
  await waitUntil(async () => done || (await acked(b)) > from, 'acknowledgements again', 60_000);
  return Date.now() - since;
}

test('5 % random packet loss each way on the agent-enricher link: 0 lost, bounded memory', {
  timeout: 150_000,
}, async (t) => {
  if (!tools(t)) return;
  const b = await bed(t, 'loss');
  for (const chain of ['INPUT', 'OUTPUT']) {
    await b.agentNs.run([
      'iptables',
      '-A',
      chain,
      '-p',
      'tcp',
      '-m',
      'statistic',
      '--mode',
      'random',
      '--probability',
      '0.05',
      '-j',
      'DROP',
    ]);
  }
  const w = watch(b);
  const started = Date.now();
  const d = await finish(b, w, '5 % loss');
  t.diagnostic(
    `5 % loss both ways: ${b.want.frames} records in ${Date.now() - started} ms (${Math.round(RECORDS / RATE)} s at the rate limit without loss); ${d.duplicates} duplicates, ${w.last.resent} batches re-sent, agent RSS max ${(w.last.maxRss / 1048576).toFixed(0)} MiB`,
  );
});

test('link down for 30 s (veth set down) mid-stream: the agent holds, recovers when it comes back, 0 lost', {
  timeout: 150_000,
}, async (t) => {
  if (!tools(t)) return;
  const b = await bed(t, 'down');
  const w = watch(b);
  await waitUntil(async () => (await acked(b)) >= RECORDS / 5, 'a fifth acknowledged', 60_000);
  await b.agentNs.ip(['link', 'set', b.agentIf, 'down']);
  const downAt = Date.now();
  await waitUntil(
    () => /keepalive timeout|ENETUNREACH|EHOSTUNREACH|timed out/i.test(b.agentLog()),
    'the agent notices',
    30_000,
  );
  const noticedMs = Date.now() - downAt;
  await new Promise((r) => setTimeout(r, Math.max(0, 30_000 - (Date.now() - downAt))));
  const before = await acked(b);
  await b.agentNs.ip(['link', 'set', b.agentIf, 'up']);
  const upAt = Date.now();
  const recoveryMs = await timeToProgress(b, before, upAt);
  const d = await finish(b, w, 'link down 30 s');
  t.diagnostic(
    `link down 30 s: noticed after ${noticedMs} ms, acknowledgements again ${recoveryMs} ms after the link came up; ${d.duplicates} duplicates, ${w.last.resent} batches re-sent, agent RSS max ${(w.last.maxRss / 1048576).toFixed(0)} MiB`,
  );
});

test("half-open for 20 s (the enricher's packets to the agent dropped, no RST): keepalive notices, 0 lost", {
  timeout: 150_000,
}, async (t) => {
  if (!tools(t)) return;
  const b = await bed(t, 'half');
  const w = watch(b);
  await waitUntil(async () => (await acked(b)) >= RECORDS / 5, 'a fifth acknowledged', 60_000);
  const rule = ['OUTPUT', '-p', 'tcp', '-d', AGENT_ADDR, '-j', 'DROP'];
  await b.enrNs.run(['iptables', '-A', ...rule]);
  const cutAt = Date.now();
  await waitUntil(() => /keepalive timeout/.test(b.agentLog()), 'keepalive timeout', 30_000);
  const noticedMs = Date.now() - cutAt;
  await new Promise((r) => setTimeout(r, Math.max(0, 20_000 - (Date.now() - cutAt))));
  const before = await acked(b);
  await b.enrNs.run(['iptables', '-D', ...rule]);
  const recoveryMs = await timeToProgress(b, before, Date.now());
  const d = await finish(b, w, 'half-open');
  t.diagnostic(
    `half-open 20 s: keepalive (${KEEPALIVE_S} s) noticed after ${noticedMs} ms (bound ${3.5 * KEEPALIVE_S} s), acknowledgements again ${recoveryMs} ms after the path healed; ${d.duplicates} duplicates, ${w.last.resent} batches re-sent, agent RSS max ${(w.last.maxRss / 1048576).toFixed(0)} MiB`,
  );
  assert.ok(
    noticedMs <= 3.5 * KEEPALIVE_S * 1000 + 3000,
    `noticed within the keepalive bound (${noticedMs} ms)`,
  );
});

/** A TCP proxy on loopback that delays every chunk by base ± jitter ms, order kept per direction. */
async function delayProxy(t: TestContext, target: number, baseMs: number, jitterMs: number): Promise<number> {
  const server = net.createServer((client) => {
    const upstream = net.connect(target, '127.0.0.1');
    const pipe = (from: net.Socket, to: net.Socket) => {
      // One queue and one timer per direction: chunks leave in arrival order (TCP keeps
      // order), each no earlier than its own due time.
      const queue: { due: number; chunk: Buffer }[] = [];
      let timer: NodeJS.Timeout | null = null;
      let ended = false;
      const flush = () => {
        timer = null;
        while (queue.length > 0 && queue[0]!.due <= Date.now()) {
          const { chunk } = queue.shift()!;
          if (to.writable) to.write(chunk);
        }
        if (queue.length > 0) timer = setTimeout(flush, queue[0]!.due - Date.now());
        else if (ended) to.destroy();
      };
      from.on('data', (chunk) => {
        const last = queue.length > 0 ? queue[queue.length - 1]!.due : 0;
        queue.push({ due: Math.max(last, Date.now() + baseMs + (Math.random() * 2 - 1) * jitterMs), chunk });
        if (timer === null) timer = setTimeout(flush, queue[0]!.due - Date.now());
      });
      from.on('close', () => {
        ended = true;
        if (timer === null) flush();
      });
      from.on('error', () => undefined);
    };
    pipe(client, upstream);
    pipe(upstream, client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  return (server.address() as net.AddressInfo).port;
}

test('delay 50 ms ± 40 ms each way through a TCP proxy: 0 lost, acks keep up', {
  timeout: 150_000,
}, async (t) => {
  const dir = tmpDir(t, 'snowtap-net-delay-');
  const want = await expectedCapture(dir, RECORDS);
  const enricher = await startEnricher(t, path.join(dir, 'out'), [
    '--keepalive-interval',
    String(KEEPALIVE_S),
  ]);
  const port = await delayProxy(t, enricher.linkPort, 50, 40);
  const started = Date.now();
  const agent = await startAgent(t, [
    '--input-file',
    want.file,
    '--enricher',
    `127.0.0.1:${port}`,
    '--batch-records',
    String(BATCH),
    '--rate-limit',
    String(RATE),
  ]);
  const code = await exitWithin(agent, 120_000, 'agent replay');
  assert.equal(code, 0, `agent replay exit code; log tail:\n${agent.log().slice(-3000)}`);
  const took = Date.now() - started;
  const received = await metric(enricher.metricsPort, 'snowtap_enricher_records_received_total');
  enricher.child.kill('SIGTERM');
  assert.equal(await exitWithin(enricher, 30_000, 'enricher'), 0);
  const d = await auditDelivery([enricher.outputDir], want);
  t.diagnostic(
    `delay 50±40 ms each way: ${want.frames} records in ${took} ms (${Math.round(RECORDS / RATE) * 1000} ms at the rate limit), ${received} received, ${d.duplicates} duplicates`,
  );
  assert.equal(d.duplicates, 0, 'delay alone re-sends nothing');
});
