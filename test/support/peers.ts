// Test-side wrapper around test/peers/: which real DNS producers and reference
// tools are installed, the project's interop rule (skip when missing, FAIL when
// SNOWTAP_REQUIRE_INTEROP=1 as in CI), free loopback ports for parallel test
// files, and promises around run-producer.sh, fstrm_capture /
// fstrm-capture.js and fstrm_replay. Loopback only; every process started here
// is stopped by its own PID.
import { type ChildProcess, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { accessSync, constants, readdirSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { interopMissing } from './interop';

export const PEERS_DIR = path.resolve(__dirname, '../../../test/peers');
export const FIXTURES_DIR = path.resolve(__dirname, '../../../test/fixtures');
/** EXTRA_CMD running the fixed dig/kdig mix (add ODD_NAMES=1 to env for the odd names). */
export const DIGS_CMD = `bash '${path.join(PEERS_DIR, 'digs.sh')}'`;

export type Producer = 'unbound' | 'bind' | 'knot' | 'kresd' | 'dnsdist' | 'pdns';

/** Debian package of each program the peer tests use (`mod-dnstap` = knotd's dnstap module). */
export const PACKAGE_OF: Readonly<Record<string, string>> = {
  unbound: 'unbound',
  'unbound-checkconf': 'unbound',
  named: 'bind9',
  'named-checkconf': 'bind9',
  knotd: 'knot',
  knotc: 'knot',
  'mod-dnstap': 'knot-module-dnstap',
  kresd: 'knot-resolver',
  dnsdist: 'dnsdist',
  pdns_recursor: 'pdns-recursor',
  dig: 'bind9-dnsutils',
  nsupdate: 'bind9-dnsutils',
  kdig: 'knot-dnsutils',
  dnsperf: 'dnsperf',
  fstrm_capture: 'fstrm-bin',
  fstrm_replay: 'fstrm-bin',
  dnstap: 'golang-github-dnstap-golang-dnstap-cli',
  'dnstap-ldns': 'dnstap-ldns',
  ss: 'iproute2',
  ip: 'iproute2',
  unshare: 'util-linux',
  bash: 'bash',
};

const HARNESS = ['bash', 'dig', 'dnsperf', 'ss'];
/** Programs run-producer.sh needs for each producer (upstream modes also need knotd). */
export const PRODUCER_NEEDS: Readonly<Record<Producer, readonly string[]>> = {
  unbound: ['unbound', 'unbound-checkconf', 'knotd', ...HARNESS],
  bind: ['named', 'named-checkconf', 'knotd', 'nsupdate', ...HARNESS],
  knot: ['knotd', 'knotc', 'mod-dnstap', ...HARNESS],
  kresd: ['kresd', 'knotd', 'kdig', ...HARNESS],
  dnsdist: ['dnsdist', 'knotd', ...HARNESS],
  pdns: ['pdns_recursor', 'knotd', ...HARNESS],
};

const SEARCH_DIRS = ['/usr/sbin', '/sbin', '/usr/bin', '/bin'];

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

// knotd loads mod-dnstap from /usr/lib/<triplet>/knot/modules-<ver>/dnstap.so.
function hasModDnstap(): boolean {
  const list = (dir: string) => {
    try {
      return readdirSync(dir);
    } catch {
      return [];
    }
  };
  for (const arch of list('/usr/lib')) {
    for (const mods of list(`/usr/lib/${arch}/knot`)) {
      if (mods.startsWith('modules-') && list(`/usr/lib/${arch}/knot/${mods}`).includes('dnstap.so'))
        return true;
    }
  }
  return false;
}

/** Absolute path of a program (PATH, then the sbin dirs a non-root PATH lacks). */
export function findBinary(name: string): string | undefined {
  if (name === 'dnstap' && process.env.DNSTAP_BIN) return process.env.DNSTAP_BIN;
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean), ...SEARCH_DIRS];
  for (const dir of dirs) {
    const file = path.join(dir, name);
    if (executable(file)) return file;
  }
  return undefined;
}

/** Expand producer names to their programs; check each. Default: everything known. */
export function peersAvailable(names: readonly string[] = Object.keys(PACKAGE_OF)): {
  ok: boolean;
  missing: string[];
} {
  const wanted = new Set<string>();
  for (const n of names) for (const b of PRODUCER_NEEDS[n as Producer] ?? [n]) wanted.add(b);
  const missing = [...wanted].filter((b) => (b === 'mod-dnstap' ? !hasModDnstap() : !findBinary(b)));
  return { ok: missing.length === 0, missing };
}

function installHint(missing: readonly string[]): string {
  const pkgs = [...new Set(missing.map((b) => PACKAGE_OF[b] ?? b))];
  return `missing ${missing.join(', ')}: apt-get install ${pkgs.join(' ')}`;
}

/**
 * The interop rule: with every needed program present, return true. Otherwise
 * skip the test (return false; the caller must `return`), unless
 * SNOWTAP_REQUIRE_INTEROP=1 (CI), where the test fails naming the packages.
 */
export function requireInterop(t: TestContext, names: readonly string[]): boolean {
  const { ok, missing } = peersAvailable(names);
  if (ok) return true;
  return interopMissing(t, installHint(missing));
}

// Ports from a range below Linux's ephemeral range (32768+), so a port we
// picked is not handed to some client socket between our check and the bind.
const PORT_MIN = 20000;
const PORT_MAX = 32000;
const handedOut = new Set<number>();

function canBind(port: number, host: string, udp: boolean): Promise<boolean> {
  return new Promise((resolve) => {
    if (udp) {
      const s = createSocket(host.includes(':') ? 'udp6' : 'udp4');
      s.once('error', () => resolve(false));
      s.bind(port, host, () => s.close(() => resolve(true)));
    } else {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(port, host, () => s.close(() => resolve(true)));
    }
  });
}

/** A loopback port free for TCP and (by default) UDP on 127.0.0.1, and ::1 when asked. */
export async function freePort(opts: { udp?: boolean; ipv6?: boolean } = {}): Promise<number> {
  const hosts = opts.ipv6 ? ['127.0.0.1', '::1'] : ['127.0.0.1'];
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = PORT_MIN + Math.floor(Math.random() * (PORT_MAX - PORT_MIN));
    if (handedOut.has(port)) continue;
    let free = true;
    for (const h of hosts) {
      free =
        free && (await canBind(port, h, false)) && (opts.udp === false || (await canBind(port, h, true)));
    }
    if (free) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free loopback port in ${PORT_MIN}-${PORT_MAX}`);
}

export interface ProcResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Run a program to completion; on timeout SIGTERM it (then SIGKILL) and resolve anyway. */
export function runToEnd(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number) {
  const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  return { child, done: collect(child, timeoutMs) };
}

function collect(child: ChildProcess, timeoutMs: number): Promise<ProcResult> {
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve, reject) => {
    let kill: NodeJS.Timeout | undefined;
    const term = setTimeout(() => {
      stderr += `\n[peers.ts] timed out after ${timeoutMs} ms, sending SIGTERM\n`;
      child.kill('SIGTERM');
      kill = setTimeout(() => child.kill('SIGKILL'), 15_000);
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(term);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(term);
      if (kill) clearTimeout(kill);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

export interface RunProducerOptions {
  producer: Producer;
  /** 'unix:/abs/path' | 'tcp:127.0.0.1:PORT' | 'file:/abs/path' (bind, knot) */
  dest: string;
  seconds: number; // dnsperf run time; 0 = start, answer, stop
  qps: number; // 0 = unlimited
  mode?: string; // MODE (see run-producer.sh)
  ipv6?: boolean;
  extraCmd?: string; // EXTRA_CMD, e.g. DIGS_CMD
  env?: Record<string, string>; // any other knob: BIDIRECTIONAL, KNOT_RWQ, QUERY_FILE, ...
  dnsPort?: number; // default: a free port
  authPort?: number; // default: a free port
  timeoutMs?: number; // default: seconds + 90 s
}

export interface RunProducerResult extends ProcResult {
  dnsperf?: { sent: number; completed: number; lost: number };
  /** How long the DNS server took to exit after SIGTERM (ms), as run-producer.sh measured it. */
  stopMs?: number;
  dnsPort: number;
  authPort: number;
}

/** Run test/peers/run-producer.sh (exit 3: transport unsupported, 4: program missing). */
export async function runProducer(o: RunProducerOptions): Promise<RunProducerResult> {
  const dnsPort = o.dnsPort ?? (await freePort({ ipv6: o.ipv6 }));
  const authPort = o.authPort ?? (await freePort());
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...o.env,
    DNS_PORT: String(dnsPort),
    AUTH_PORT: String(authPort),
  };
  if (o.mode) env.MODE = o.mode;
  if (o.ipv6) env.IPV6 = '1';
  if (o.extraCmd) env.EXTRA_CMD = o.extraCmd;
  const script = path.join(PEERS_DIR, 'run-producer.sh');
  const args = [script, o.producer, o.dest, String(o.seconds), String(o.qps)];
  const { done } = runToEnd('bash', args, env, o.timeoutMs ?? (o.seconds + 90) * 1000);
  const r = await done;
  const stop = /Producer stop ms: (\d+)/.exec(r.stdout);
  return {
    ...r,
    dnsperf: parseDnsperf(r.stdout),
    stopMs: stop ? Number(stop[1]) : undefined,
    dnsPort,
    authPort,
  };
}

/** dnsperf's "Queries sent/completed/lost" lines (as run-producer.sh prints them). */
export function parseDnsperf(out: string): RunProducerResult['dnsperf'] {
  const get = (what: string) => {
    const m = new RegExp(`^\\s*Queries ${what}:\\s+(\\d+)`, 'm').exec(out);
    return m ? Number(m[1]) : undefined;
  };
  const sent = get('sent');
  if (sent === undefined) return undefined;
  return { sent, completed: get('completed') ?? 0, lost: get('lost') ?? 0 };
}

export interface CaptureOptions {
  unix?: string; // socket path
  tcp?: number; // port on 127.0.0.1
  out: string; // Frame Streams file to write
  /** fstrm: fstrm_capture (bidirectional only); node: test/peers/fstrm-capture.js (also unidirectional) */
  receiver?: 'fstrm' | 'node';
}

export interface CaptureHandle {
  child: ChildProcess;
  /** SIGTERM (both receivers close the file cleanly), then the data-frame count they report. */
  stop(): Promise<ProcResult & { dataFrames?: number }>;
}

/** Start a reference receiver; resolves once it listens (checked without connecting). */
export async function fstrmCapture(o: CaptureOptions): Promise<CaptureHandle> {
  const where = o.unix ? `unix:${o.unix}` : `tcp:127.0.0.1:${o.tcp}`;
  if (!o.unix && !o.tcp) throw new Error('fstrmCapture needs unix or tcp');
  const [cmd, args] =
    o.receiver === 'node'
      ? [process.execPath, [path.join(PEERS_DIR, 'fstrm-capture.js'), where, o.out]]
      : [
          'fstrm_capture',
          [
            '-t',
            'protobuf:dnstap.Dnstap',
            ...(o.unix ? ['-u', o.unix] : ['-a', '127.0.0.1', '-p', String(o.tcp)]),
            '-w',
            o.out,
          ],
        ];
  if (o.unix) rmSync(o.unix, { force: true }); // fstrm_capture leaves its socket file behind
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const done = collect(child, 24 * 3600 * 1000);
  let exited = false;
  done.finally(() => (exited = true)).catch(() => undefined);
  for (let i = 0; ; i++) {
    const listening = o.unix ? isSocket(o.unix) : !(await canBind(o.tcp as number, '127.0.0.1', false));
    if (listening) break;
    if (exited || i > 100) {
      child.kill('SIGKILL');
      const r = await done;
      throw new Error(`${cmd} did not listen on ${where}: ${r.stderr.trim()}`);
    }
    await new Promise((res) => setTimeout(res, 50));
  }
  return {
    child,
    async stop() {
      child.kill('SIGTERM');
      const r = await done;
      // fstrm_capture: "wrote N frames" counts START and STOP; fstrm-capture.js: "data frames: N".
      const m = /wrote (\d+) frames/.exec(r.stderr);
      const n = /data frames: (\d+)/.exec(r.stderr);
      return { ...r, dataFrames: m ? Number(m[1]) - 2 : n ? Number(n[1]) : undefined };
    },
  };
}

function isSocket(p: string): boolean {
  try {
    return statSync(p).isSocket();
  } catch {
    return false;
  }
}

/** fstrm_replay FILES into a receiver (bidirectional Frame Streams, libfstrm). */
export function fstrmReplay(o: { files: string[]; unix?: string; tcp?: number; timeoutMs?: number }) {
  if (!o.unix && !o.tcp) throw new Error('fstrmReplay needs unix or tcp');
  const to = o.unix ? ['-u', o.unix] : ['-a', '127.0.0.1', '-p', String(o.tcp)];
  const args = ['-t', 'protobuf:dnstap.Dnstap', ...to, ...o.files.flatMap((f) => ['-r', f])];
  return runToEnd('fstrm_replay', args, process.env, o.timeoutMs ?? 120_000).done;
}
