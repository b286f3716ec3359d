// Debian's haproxy as a stand-in for kube-proxy in the rebalance load test: a TCP listener on
// 127.0.0.1 in front of a backend of pre-declared server slots ("endpoints") that are given an
// address and made ready or not ready at run time through the runtime API (stats socket).
//
// What it must share with kube-proxy (iptables mode) for the test to mean anything:
// - a uniformly random endpoint per NEW connection, independent of the previous ones:
//   `balance hash rand` with `hash-type map-based`, i.e. a properly seeded random number
//   (ha_random) modulo the table of ready servers. Not `balance random`: in haproxy 2.6 it
//   draws from a per-thread xorshift whose seed is a constant (statistical_prng), so every
//   haproxy start replays the same sequence (measured: identical pick sequences across
//   restarts, and the third server got 25.5% of ~300 connections in three runs out of three).
//   Plain `random` is also random(2), power-of-two-choices, which prefers the endpoint with
//   fewer connections and would flatter the result; iptables' statistic module does not.
// - established connections are never cut when an endpoint is added or removed: a server put
//   in maintenance keeps its sessions (we do not set `on-marked-down shutdown-sessions`), as
//   iptables keeps conntrack entries; the pod going away is what ends them.
// - idle connections are not timed out: the link's standby connection is quiet for minutes
//   (keepalive only), so client/server/tunnel timeouts are long and TCP keepalive is on.
// The runtime API can do everything needed (`set server B/S addr A port P`, `set server B/S
// state ready|maint`), so no reload is ever needed and no connection is disturbed by one.

import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { killOnExit } from './cluster';

export const HAPROXY_BINARY = '/usr/sbin/haproxy';
const BACKEND = 'enrichers';
/** How long start() waits for the runtime API to answer. */
const START_TIMEOUT_MS = 10_000;
/** SIGTERM, then SIGKILL after this long. */
const STOP_TIMEOUT_MS = 5_000;
/** Long enough that no connection of a test run is ever cut for idleness. */
const IDLE_TIMEOUT = '1h';

export interface HaproxyOptions {
  /** Port of the "Service" on 127.0.0.1. */
  port: number;
  /** Address the "Service" listens on (default 127.0.0.1; a ClusterIP inside a test netns). */
  bindAddress?: string;
  /** Prepended to haproxy's command line, e.g. `ip netns exec NS` (haproxy keeps the PID). */
  argvPrefix?: readonly string[];
  /** Endpoint slots s1..sN, all not ready at start. */
  slots: number;
  binary?: string;
  /** haproxy's own stderr (alerts, warnings); default: discarded. */
  stderr?: (line: string) => void;
}

export interface ServerState {
  name: string;
  /** `ready` or `maint` (administrative state). */
  state: 'ready' | 'maint';
  address: string;
  port: number;
  /** Established sessions through this server right now. */
  sessions: number;
  /** Connections sent to this server since haproxy started. */
  connections: number;
}

export function haproxyAvailable(binary = HAPROXY_BINARY): boolean {
  try {
    accessSync(binary, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export function haproxyConfig(
  port: number,
  slots: number,
  socket: string,
  bindAddress = '127.0.0.1',
): string {
  return [
    'global',
    `  stats socket ${socket} mode 600 level admin`,
    // Each connection takes two fds; stay far below common RLIMIT_NOFILE values.
    '  maxconn 4096',
    'defaults',
    '  mode tcp',
    '  timeout connect 2s',
    `  timeout client ${IDLE_TIMEOUT}`,
    `  timeout server ${IDLE_TIMEOUT}`,
    `  timeout tunnel ${IDLE_TIMEOUT}`,
    '  option tcpka',
    'frontend service',
    `  bind ${bindAddress}:${port}`,
    `  default_backend ${BACKEND}`,
    `backend ${BACKEND}`,
    '  balance hash rand',
    '  hash-type map-based',
    // Port 1 is a placeholder; a slot gets its real address when an endpoint is added.
    `  server-template s 1-${slots} 127.0.0.1:1 disabled`,
    '',
  ].join('\n');
}

export class Haproxy {
  readonly port: number;
  readonly slots: number;
  readonly bindAddress: string;
  private readonly argvPrefix: readonly string[];
  private readonly binary: string;
  private readonly dir: string;
  private readonly socket: string;
  private readonly stderr: ((line: string) => void) | undefined;
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();

  constructor(o: HaproxyOptions) {
    if (!Number.isInteger(o.slots) || o.slots < 1)
      throw new RangeError(`Haproxy slots: expected >= 1, got ${o.slots}`);
    this.port = o.port;
    this.slots = o.slots;
    this.bindAddress = o.bindAddress ?? '127.0.0.1';
    this.argvPrefix = o.argvPrefix ?? [];
    this.binary = o.binary ?? HAPROXY_BINARY;
    this.stderr = o.stderr;
    this.dir = mkdtempSync(path.join(tmpdir(), 'snowtap-haproxy-'));
    this.socket = path.join(this.dir, 'admin.sock');
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Writes the config, starts haproxy in the foreground (-db) and waits for its runtime API. */
  async start(): Promise<void> {
    const cfg = path.join(this.dir, 'haproxy.cfg');
    writeFileSync(cfg, haproxyConfig(this.port, this.slots, this.socket, this.bindAddress));
    const argv = [...this.argvPrefix, this.binary, '-db', '-f', cfg];
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    killOnExit(child);
    let err = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      err += d;
      if (this.stderr) for (const line of d.split('\n')) if (line.trim() !== '') this.stderr(line);
    });
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (child.exitCode !== null) {
        await this.stop();
        throw new Error(`haproxy exited with ${child.exitCode}: ${err.trim()}`);
      }
      try {
        await this.command('show info');
        return;
      } catch {
        if (Date.now() > deadline) {
          await this.stop();
          throw new Error(`haproxy runtime API did not answer within ${START_TIMEOUT_MS} ms: ${err.trim()}`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  /** One runtime API command; resolves with its answer (haproxy closes after answering). */
  command(cmd: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const sock = net.createConnection(this.socket);
      let out = '';
      sock.setEncoding('utf8');
      sock.on('connect', () => sock.end(cmd + '\n'));
      sock.on('data', (d: string) => (out += d));
      sock.on('error', reject);
      sock.on('close', () => resolve(out));
    });
  }

  /** A command whose success answer is empty; anything else is an error naming the command. */
  private async must(cmd: string): Promise<void> {
    const out = (await this.command(cmd)).trim();
    if (out !== '' && !/^IP changed|^no need to change/i.test(out))
      throw new Error(`haproxy '${cmd}': ${out}`);
  }

  private slotName(slot: number): string {
    if (!Number.isInteger(slot) || slot < 1 || slot > this.slots) {
      throw new RangeError(`haproxy slot ${slot}: expected 1..${this.slots}`);
    }
    return `${BACKEND}/s${slot}`;
  }

  /** Endpoint added and ready (pod Ready): new connections may now go to address:port. */
  async addEndpoint(slot: number, port: number, address = '127.0.0.1'): Promise<void> {
    const s = this.slotName(slot);
    await this.must(`set server ${s} addr ${address} port ${port}`);
    await this.must(`set server ${s} state ready`);
  }

  /** Endpoint not ready (pod NotReady/terminating): no new connections, existing ones stay. */
  async removeEndpoint(slot: number): Promise<void> {
    await this.must(`set server ${this.slotName(slot)} state maint`);
  }

  /** Every slot's state, address and current sessions (`show stat`, CSV). */
  async servers(): Promise<ServerState[]> {
    const csv = await this.command(`show stat -1 4 -1`);
    const lines = csv.split('\n').filter((l) => l.trim() !== '');
    const head = lines.shift()?.replace(/^# /, '').split(',') ?? [];
    const col = (name: string) => head.indexOf(name);
    const [px, sv, scur, stot, status, addr] = ['pxname', 'svname', 'scur', 'stot', 'status', 'addr'].map(
      col,
    );
    const out: ServerState[] = [];
    for (const line of lines) {
      const f = line.split(',');
      if (f[px!] !== BACKEND) continue;
      const [host = '', p = '0'] = (f[addr!] ?? '').split(':');
      out.push({
        name: f[sv!]!,
        state: f[status!] === 'MAINT' ? 'maint' : 'ready',
        address: host,
        port: Number(p),
        sessions: Number(f[scur!]),
        connections: Number(f[stot!]),
      });
    }
    return out;
  }

  /** SIGTERM by PID (SIGKILL after a deadline) and removal of the temp dir. */
  async stop(): Promise<void> {
    const child = this.child;
    if (child !== null && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await this.exited;
      clearTimeout(timer);
    }
    this.child = null;
    rmSync(this.dir, { recursive: true, force: true });
  }
}
