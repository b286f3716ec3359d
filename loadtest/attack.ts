// Connection attacks on the exposed ports (issue 10, "Attackers"): thousands of idle TCP
// connections, or slowloris handshakes (one byte a second), re-opened as fast as the server
// closes them, against the enricher's link port, its --dnstap-listen, or an agent's
// --dnstap-tcp. A real sender replays a capture before and during the attack; the report
// gives both times, their ratio, the server's peak RSS and what the attackers saw.
//
//   npm run attack -- [--target link|enricher-dnstap|agent-dnstap] [--connections 10000]
//                     [--mode idle|slowloris] [--file CAPTURE] [--snowtap DIST_DIR]
//                     [--attacker-nice N] [--settle SECONDS] [--replay-timeout SECONDS] [--json]
//
// Real processes only (the built CLI), loopback only. The attacker is a child process
// (--attacker-nice N runs it under nice: on a real network its CPU is somebody else's, here it
// shares the cores with the server and the sender; default 0, the harshest). It needs one
// descriptor per connection: raise RLIMIT_NOFILE (ulimit -n) above --connections.

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

export type AttackTarget = 'link' | 'enricher-dnstap' | 'agent-dnstap';
export type AttackMode = 'idle' | 'slowloris';

export interface AttackOptions {
  target: AttackTarget;
  mode: AttackMode;
  connections: number;
  /** Frame Streams capture replayed by the real sender. */
  file: string;
  /** Root of the build to attack (holds cli/main.js). */
  dist: string;
  /** Give up on one replay after this long. */
  replayTimeoutMs: number;
  /** From the attack's start to the replay under attack. Default 4 s. */
  settleMs?: number;
  /** nice(1) increment of the attacker process. Default 0. */
  attackerNice?: number;
  log?: (line: string) => void;
}

export interface AttackReport {
  target: AttackTarget;
  mode: AttackMode;
  connections: number;
  attackerNice: number;
  baselineMs: number;
  underAttackMs: number;
  /** underAttackMs / baselineMs. */
  ratio: number;
  /** Attack sockets connected at the moment the replay under attack started. */
  connectedAtStart: number;
  /** Connections the attacker opened (re-opens included) and saw closed by the server. */
  opened: number;
  closedByServer: number;
  serverRssBeforeKiB: number;
  serverPeakRssKiB: number;
  /** Open descriptors of the server process at the end of the attack. */
  serverFds: number;
  /** From the attack's start to the end of the replay under attack. */
  attackSeconds: number;
  /** CPU the server and the attacker used in that time (a 2-core machine has 2 s per second). */
  serverCpuSeconds: number;
  attackerCpuSeconds: number;
}

const REPO = path.resolve(__dirname, '../..');
/** A plausible first byte stream for each protocol: slowloris drips these one at a time. */
const DRIP: Record<AttackTarget, Buffer> = {
  // Link frame header of a Hello (length then type), never completed.
  link: Buffer.from([0, 0, 0, 64, 1, 0, 0, 0, 0, 0, 0, 0]),
  // Frame Streams escape + control length + READY: the handshake never completes.
  'enricher-dnstap': Buffer.from([0, 0, 0, 0, 0, 0, 0, 40, 0, 0, 0, 4, 0, 0, 0, 1]),
  'agent-dnstap': Buffer.from([0, 0, 0, 0, 0, 0, 0, 40, 0, 0, 0, 4, 0, 0, 0, 1]),
};

/** Keeps `count` connections open to a port, re-opening each as soon as it closes. */
export class Attacker {
  opened = 0;
  closedByServer = 0;
  private readonly sockets = new Set<net.Socket>();
  private readonly drip: NodeJS.Timeout | null = null;
  private stopped = false;
  private offset = new Map<net.Socket, number>();

  constructor(
    private readonly port: number,
    private readonly count: number,
    mode: AttackMode,
    private readonly bytes: Buffer,
  ) {
    if (mode === 'slowloris') {
      this.drip = setInterval(() => this.dripAll(), 1000);
    }
  }

  /** Connected sockets right now. */
  get connected(): number {
    let n = 0;
    for (const s of this.sockets) if (!s.connecting) n++;
    return n;
  }

  /** Opens the connections in waves (a listen backlog only holds so many at once). */
  async start(): Promise<void> {
    const WAVE = 500;
    for (let i = 0; i < this.count && !this.stopped; i += WAVE) {
      for (let j = i; j < Math.min(this.count, i + WAVE); j++) this.open();
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.drip !== null) clearInterval(this.drip);
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  private open(): void {
    if (this.stopped) return;
    const s = net.connect({ port: this.port, host: '127.0.0.1' });
    this.opened++;
    this.sockets.add(s);
    s.on('error', () => {});
    s.on('data', () => {}); // read whatever the server says (Reject, ACCEPT) and ignore it
    s.on('close', () => {
      this.sockets.delete(s);
      this.offset.delete(s);
      if (this.stopped) return;
      this.closedByServer++;
      // As fast as the server closes them; setImmediate keeps the loop from starving.
      setImmediate(() => this.open());
    });
  }

  private dripAll(): void {
    for (const s of this.sockets) {
      if (s.connecting || s.destroyed) continue;
      const at = this.offset.get(s) ?? 0;
      s.write(this.bytes.subarray(at % this.bytes.length, (at % this.bytes.length) + 1));
      this.offset.set(s, at + 1);
    }
  }
}

interface AttackerStats {
  connected: number;
  opened: number;
  closedByServer: number;
}

/** An Attacker in a child process (see the header), driven over IPC. */
class AttackerProcess {
  readonly child: ChildProcess;
  private readonly exited: Promise<void>;

  constructor(port: number, count: number, mode: AttackMode, target: AttackTarget, nice: number) {
    const args = [__filename, '--attacker-child', String(port), String(count), mode, target];
    this.child = spawn('nice', ['-n', String(nice), process.execPath, ...args], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.exited = new Promise((resolve) => this.child.on('exit', () => resolve()));
  }

  stats(): Promise<AttackerStats> {
    return new Promise((resolve) => {
      this.child.once('message', (m) => resolve(m as AttackerStats));
      this.child.send('stats');
    });
  }

  stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    return this.exited;
  }
}

function attackerChild(argv: string[]): void {
  const [port, count, mode, target] = argv;
  const a = new Attacker(Number(port), Number(count), mode as AttackMode, DRIP[target as AttackTarget]);
  void a.start();
  process.on('message', () =>
    process.send!({ connected: a.connected, opened: a.opened, closedByServer: a.closedByServer }),
  );
  process.on('disconnect', () => process.exit(0));
}

interface Proc {
  child: ChildProcess;
  /** Resolves with the first JSON log line whose msg matches. */
  line(msg: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  exit: Promise<number | null>;
}

function start(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Proc {
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env });
  const lines: Record<string, unknown>[] = [];
  const waiters: { msg: string; resolve: (l: Record<string, unknown>) => void }[] = [];
  let rest = '';
  child.stderr!.on('data', (d: Buffer) => {
    rest += d.toString();
    let nl = rest.indexOf('\n');
    while (nl >= 0) {
      const text = rest.slice(0, nl);
      rest = rest.slice(nl + 1);
      nl = rest.indexOf('\n');
      let l: Record<string, unknown>;
      try {
        l = JSON.parse(text);
      } catch {
        continue;
      }
      if (lines.length < 10_000) lines.push(l);
      for (const w of waiters.splice(0)) {
        if (l.msg === w.msg) w.resolve(l);
        else waiters.push(w);
      }
    }
  });
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    exit,
    line: (msg, timeoutMs = 20_000) => {
      const seen = lines.find((l) => l.msg === msg);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const t = setTimeout(
          () => reject(new Error(`no '${msg}' log line within ${timeoutMs} ms`)),
          timeoutMs,
        );
        waiters.push({
          msg,
          resolve: (l) => {
            clearTimeout(t);
            resolve(l);
          },
        });
      });
    },
  };
}

/** Sum of the samples of one metric line prefix on a /metrics endpoint. */
async function metric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n'))
    if (line.startsWith(name)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  return sum;
}

function rssKiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** CPU seconds (user + system) a process has used so far; 0 when it is gone. */
function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

/** USER_HZ: /proc/PID/stat counts in these (100 on every Linux we run on). */
const CLOCK_TICKS = 100;

function fdCount(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return 0;
  }
}

async function timed(p: Proc, timeoutMs: number, what: string): Promise<number> {
  const t0 = performance.now();
  const timer = setTimeout(() => p.child.kill('SIGKILL'), timeoutMs);
  const code = await p.exit;
  clearTimeout(timer);
  if (code !== 0) throw new Error(`${what} exited with ${code} (killed after ${timeoutMs} ms?)`);
  return performance.now() - t0;
}

/** Runs one attack scenario end to end; every process it starts is stopped before it returns. */
export async function runAttack(o: AttackOptions): Promise<AttackReport> {
  const log = o.log ?? (() => {});
  const cli = path.join(o.dist, 'cli/main.js');
  const work = mkdtempSync(path.join(tmpdir(), 'snowtap-attack-'));
  const procs: Proc[] = [];
  const attacker: { a: AttackerProcess | null } = { a: null };
  try {
    const enricher = start(process.execPath, [
      cli,
      'enricher',
      '--listen',
      '127.0.0.1:0',
      '--metrics-listen',
      '127.0.0.1:0',
      '--dnstap-listen',
      '127.0.0.1:0',
      '--output-dir',
      path.join(work, 'out'),
      '--id',
      'attack-enricher',
    ]);
    procs.push(enricher);
    const ready = await enricher.line('enricher ready');
    const linkPort = Number(ready.link);
    let server = enricher;
    // dnstap senders exit once their bytes are in the socket: the replay ends when the
    // server has counted every frame.
    let frames = async () =>
      metric(Number(ready.metrics), 'snowtap_enricher_records_received_total{input="dnstap"}');
    let attackPort = o.target === 'link' ? linkPort : Number(ready.dnstap);
    if (o.target === 'agent-dnstap') {
      const agent = start(process.execPath, [
        cli,
        'agent',
        '--dnstap-tcp',
        '127.0.0.1:0',
        '--enricher',
        `127.0.0.1:${linkPort}`,
        '--metrics-listen',
        '127.0.0.1:0',
        '--id',
        'attack-agent',
      ]);
      procs.push(agent);
      attackPort = Number((await agent.line('agent started')).tcpPort);
      const ops = String((await agent.line('ops endpoint listening')).metrics);
      frames = async () =>
        metric(Number(ops.slice(ops.lastIndexOf(':') + 1)), 'snowtap_agent_records_in_total');
      server = agent;
    }
    let replays = 0;
    let fileFrames = -1;
    const replay = async (): Promise<number> => {
      replays++;
      const t0 = performance.now();
      const before = o.target === 'link' ? 0 : await frames();
      const sender =
        o.target === 'link'
          ? start(process.execPath, [
              cli,
              'agent',
              '--input-file',
              o.file,
              '--enricher',
              `127.0.0.1:${linkPort}`,
              '--metrics-listen',
              '127.0.0.1:0',
              '--id',
              `replay-${replays}`,
            ])
          : start('dnstap', ['-r', o.file, '-T', `127.0.0.1:${attackPort}`]);
      procs.push(sender);
      const ms = await timed(
        sender,
        o.replayTimeoutMs,
        o.target === 'link' ? 'agent --input-file' : 'dnstap -r -T',
      );
      if (o.target === 'link') return ms;
      if (fileFrames < 0) {
        // First (warm-up) run: the file's frame count is what arrives until the counter settles.
        let last = -1;
        for (let n = await frames(); n !== last; n = await frames()) {
          last = n;
          await new Promise((r) => setTimeout(r, 500));
        }
        fileFrames = last - before;
        log(`${fileFrames} frames per replay`);
      }
      while ((await frames()) - before < fileFrames) {
        if (performance.now() - t0 > o.replayTimeoutMs) throw new Error('frames did not all arrive');
        await new Promise((r) => setTimeout(r, 5));
      }
      return performance.now() - t0;
    };
    await replay(); // warm-up: first-run costs (module loading, page cache) out of the figures
    const baselineMs = await replay();
    log(`baseline replay: ${baselineMs.toFixed(0)} ms`);
    const pid = server.child.pid!;
    const serverRssBeforeKiB = rssKiB(pid);
    const cpu0 = cpuSeconds(pid);
    const a = new AttackerProcess(attackPort, o.connections, o.mode, o.target, o.attackerNice ?? 0);
    attacker.a = a;
    const attackStart = performance.now();
    // Let the attack settle: every socket connected (or bouncing), slowloris drips started.
    // A settle near the handshake deadline (10 s) puts the replay inside the churn of every
    // attack socket being cut at once and re-opened.
    await new Promise((r) => setTimeout(r, o.settleMs ?? 4_000));
    const settled = await a.stats();
    const connectedAtStart = settled.connected;
    log(
      `attack: ${connectedAtStart} connected, ${settled.opened} opened, ${settled.closedByServer} closed by server`,
    );
    let peak = rssKiB(pid);
    const sampler = setInterval(() => (peak = Math.max(peak, rssKiB(pid))), 100);
    let underAttackMs: number;
    try {
      underAttackMs = await replay();
    } finally {
      clearInterval(sampler);
    }
    const serverFds = fdCount(pid);
    const attackSeconds = (performance.now() - attackStart) / 1000;
    // The attacker runs under nice(1): its own process is the child of `nice` (same pid).
    const attackerCpu = cpuSeconds(a.child.pid!);
    const serverCpu = cpuSeconds(pid) - cpu0;
    log(`replay under attack: ${underAttackMs.toFixed(0)} ms`);
    const end = await a.stats();
    a.stop();
    return {
      target: o.target,
      mode: o.mode,
      connections: o.connections,
      attackerNice: o.attackerNice ?? 0,
      baselineMs: Math.round(baselineMs),
      underAttackMs: Math.round(underAttackMs),
      ratio: Math.round((underAttackMs / baselineMs) * 100) / 100,
      connectedAtStart,
      opened: end.opened,
      closedByServer: end.closedByServer,
      serverRssBeforeKiB,
      serverPeakRssKiB: Math.max(peak, serverRssBeforeKiB),
      serverFds,
      attackSeconds: Math.round(attackSeconds * 10) / 10,
      serverCpuSeconds: Math.round(serverCpu * 100) / 100,
      attackerCpuSeconds: Math.round(attackerCpu * 100) / 100,
    };
  } finally {
    await attacker.a?.stop();
    for (const p of procs)
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await Promise.all(procs.map((p) => p.exit));
    rmSync(work, { recursive: true, force: true });
  }
}

function argValue(argv: string[], name: string, def: string): string {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : def;
}

async function main(argv: string[]): Promise<number> {
  const report = await runAttack({
    target: argValue(argv, 'target', 'link') as AttackTarget,
    mode: argValue(argv, 'mode', 'idle') as AttackMode,
    connections: Number(argValue(argv, 'connections', '10000')),
    file: path.resolve(
      argValue(argv, 'file', path.join(REPO, 'test/fixtures/unbound-local-unix-bulk.fstrm')),
    ),
    dist: path.resolve(argValue(argv, 'snowtap', path.join(REPO, 'dist'))),
    replayTimeoutMs: Number(argValue(argv, 'replay-timeout', '120')) * 1000,
    attackerNice: Number(argValue(argv, 'attacker-nice', '0')),
    settleMs: Number(argValue(argv, 'settle', '4')) * 1000,
    log: (l) => process.stderr.write(`${l}\n`),
  });
  process.stdout.write(`${JSON.stringify(report, null, argv.includes('--json') ? undefined : 2)}\n`);
  return report.ratio <= 3 ? 0 : 1;
}

if (require.main === module && process.argv[2] === '--attacker-child') {
  attackerChild(process.argv.slice(3));
} else if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      process.stderr.write(`attack: ${(err as Error).stack ?? err}\n`);
      process.exitCode = 1;
    },
  );
}
