// Child processes for load tests: snowtap enrichers and agents started as `node
// dist/cli/main.js <command>`, each with its own loopback ports and a log file, stopped by
// their own PID only; plus free-port picking and a small Prometheus text scraper.

import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';

/** The compiled CLI next to this file (dist/loadtest -> dist/cli/main.js). */
export const SNOWTAP_MAIN = path.resolve(__dirname, '../cli/main.js');
/** SIGTERM grace before SIGKILL; above the enricher's default drain timeout (20 s). */
export const STOP_TIMEOUT_MS = 30_000;
const HTTP_TIMEOUT_MS = 2_000;

// Ports below Linux's ephemeral range (32768+), so a port we checked is not handed to some
// client socket before the child binds it.
const PORT_MIN = 20_000;
const PORT_MAX = 32_000;
const handedOut = new Set<number>();

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** A loopback TCP port that was free a moment ago and was not handed out by this process. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 500; attempt++) {
    const port = PORT_MIN + Math.floor(Math.random() * (PORT_MAX - PORT_MIN));
    if (handedOut.has(port) || !(await canBind(port))) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error(`no free loopback port in ${PORT_MIN}-${PORT_MAX}`);
}

// Children still running when this process exits (a failed test, Ctrl-C) are killed by PID,
// so no enricher, agent or haproxy outlives the harness that started it.
const live = new Set<ChildProcess>();
let exitHook = false;

/** Registers `child` to be SIGKILLed if this process exits before it does. */
export function killOnExit(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (!exitHook) {
    exitHook = true;
    process.once('exit', () => {
      for (const c of live) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    });
  }
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * The harness's environment minus SNOWTAP_* (the harness's own options, e.g.
 * SNOWTAP_SWITCH_INTERVAL or SNOWTAP_CONFIG, must not configure the children), log level kept.
 */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SNOWTAP_')) env[k] = v;
  env.SNOWTAP_LOG_LEVEL = process.env.SNOWTAP_LOG_LEVEL ?? 'info';
  return env;
}

/** One snowtap child process; stdout and stderr go to `logFile`. */
export class SnowtapProcess {
  readonly name: string;
  readonly args: readonly string[];
  readonly logFile: string;
  readonly exited: Promise<Exit>;
  private readonly child: ChildProcess;
  private readonly log: WriteStream;

  constructor(name: string, args: readonly string[], logFile: string, main = SNOWTAP_MAIN) {
    this.name = name;
    this.args = args;
    this.logFile = logFile;
    this.log = createWriteStream(logFile);
    this.child = spawn(process.execPath, [main, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: childEnv(),
    });
    killOnExit(this.child);
    this.child.stdout!.pipe(this.log, { end: false });
    this.child.stderr!.pipe(this.log, { end: false });
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        // Let the pipes flush what the child wrote last before closing the log.
        setImmediate(() => this.log.end());
        resolve({ code, signal });
      });
      this.child.once('error', (err) => {
        this.log.end(`spawn failed: ${err}\n`);
        resolve({ code: null, signal: null });
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Sends `signal` to this child's PID and waits for its exit (SIGKILL after `timeoutMs`). */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = STOP_TIMEOUT_MS): Promise<Exit> {
    if (this.running) {
      this.child.kill(signal);
      const timer = setTimeout(() => this.running && this.child.kill('SIGKILL'), timeoutMs);
      const exit = await this.exited;
      clearTimeout(timer);
      return exit;
    }
    return this.exited;
  }
}

/** GET http://127.0.0.1:port/path; resolves { status, body }, rejects on connection errors. */
export function httpGet(port: number, urlPath: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, timeout: HTTP_TIMEOUT_MS }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET :${port}${urlPath} timed out`)));
    req.on('error', reject);
  });
}

/** Polls GET path until it answers 200; throws after `timeoutMs` or when `proc` exits. */
export async function waitHttpOk(port: number, urlPath: string, timeoutMs: number, proc?: SnowtapProcess) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc && !proc.running) throw new Error(`${proc.name} exited during start-up (log: ${proc.logFile})`);
    try {
      if ((await httpGet(port, urlPath)).status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`:${port}${urlPath} not OK within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Prometheus text format -> samples; `{}`-less names and labelled series alike. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    if (m[2])
      for (const l of m[2].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** Sum of the samples named `name` whose labels include `match`. */
export function metricSum(
  samples: readonly Sample[],
  name: string,
  match: Record<string, string> = {},
): number {
  let sum = 0;
  for (const s of samples) {
    if (s.name !== name) continue;
    let ok = true;
    for (const [k, v] of Object.entries(match)) if (s.labels[k] !== v) ok = false;
    if (ok) sum += s.value;
  }
  return sum;
}

export async function scrape(port: number): Promise<Sample[]> {
  const res = await httpGet(port, '/metrics');
  if (res.status !== 200) throw new Error(`GET :${port}/metrics answered ${res.status}`);
  return parseMetrics(res.body);
}
