// A network namespace owned by one test run: created with a unique name, loopback up, the
// "cluster" addresses (a ClusterIP, one address per pod) as /32 on its `lo`, processes started
// inside it with `ip netns exec` and tracked by PID, and removed again: idempotently, and also
// when the harness exits on an exception or SIGINT/SIGTERM. Nothing here touches the host's own
// namespace: every command names this namespace (`ip -n NS` / `ip netns exec NS`), and the only
// traffic is between addresses on the namespace's loopback.

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { BedError } from './bed-errors';
import { onBedExit } from './bed-exit';

export const IP_BINARY = 'ip';
/** Every namespace this code creates starts with this, so leftovers are recognisable. */
export const NETNS_PREFIX = 'snowtap-';
/** SIGTERM grace before SIGKILL when stopping a process started in the namespace. */
const STOP_TIMEOUT_MS = 5_000;
const COMMAND_TIMEOUT_MS = 30_000;

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** Runs `argv` to completion; rejects with BED_COMMAND_FAILED (stderr in the message) on non-zero. */
export function runCommand(argv: readonly string[], input?: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const [cmd, ...args] = argv;
    const child = spawn(cmd!, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), COMMAND_TIMEOUT_MS);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new BedError('BED_COMMAND_FAILED', `${argv.join(' ')}: ${err.message}`, { cause: err }));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve({ stdout, stderr });
      else {
        const why = signal ? `killed by ${signal}` : `exit ${code}`;
        reject(new BedError('BED_COMMAND_FAILED', `${argv.join(' ')}: ${why}: ${stderr.trim()}`));
      }
    });
    child.stdin.on('error', () => {});
    child.stdin.end(input ?? '');
  });
}

/** Something that puts a command line inside another context (e.g. a CPU-limited pod's cgroup). */
export interface ArgvWrapper {
  wrapArgv(argv: readonly string[]): string[];
}

export interface SpawnOptions {
  /** Wraps the `ip netns exec` command line, e.g. a CpuPod entering its cgroup before the exec. */
  wrapper?: ArgvWrapper;
  /** Default: stdin ignored, stdout and stderr piped. */
  stdio?: 'pipe' | 'ignore';
  env?: NodeJS.ProcessEnv;
}

/** A process running inside the namespace; `pid` is the program's own PID (ip netns exec execs it). */
export class NetnsProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(child: ChildProcess) {
    this.child = child;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
      child.once('error', () => resolve({ code: null, signal: null }));
    });
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new BedError('BED_COMMAND_FAILED', 'process did not start');
    return this.child.pid;
  }

  get running(): boolean {
    return this.child.pid !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Signals this PID only and waits for it (SIGKILL after `timeoutMs`). */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = STOP_TIMEOUT_MS) {
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

// Namespaces alive in this process, removed synchronously if it exits first (a failed assertion,
// an uncaught exception, Ctrl-C): their processes are SIGKILLed by PID, then `ip netns del`.
const live = new Set<Netns>();

let counter = 0;

export class Netns {
  readonly name: string;
  private readonly addresses = new Set<string>();
  private readonly procs = new Set<NetnsProcess>();
  private removed = false;
  private unregister: () => void = () => {};

  private constructor(name: string) {
    this.name = name;
  }

  /** Creates `snowtap-<label>-<pid>-<n>-<random>` with lo up. Needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN). */
  static async create(label = 'bed'): Promise<Netns> {
    if (!/^[a-z0-9-]{1,12}$/.test(label))
      throw new BedError('BED_INVALID_ARGUMENT', `netns label '${label}'`);
    const rand = Math.random().toString(36).slice(2, 6);
    const ns = new Netns(`${NETNS_PREFIX}${label}-${process.pid}-${++counter}-${rand}`);
    await runCommand([IP_BINARY, 'netns', 'add', ns.name]);
    live.add(ns);
    ns.unregister = onBedExit(() => ns.removeSync());
    try {
      await ns.ip(['link', 'set', 'lo', 'up']);
    } catch (err) {
      await ns.remove();
      throw err;
    }
    return ns;
  }

  /** `ip -n NS ARGS...` */
  async ip(args: readonly string[]): Promise<RunResult> {
    this.assertOpen();
    return runCommand([IP_BINARY, '-n', this.name, ...args]);
  }

  /** Adds `addr` as a /32 on the namespace's lo (a ClusterIP or a pod address). */
  async addAddress(addr: string): Promise<void> {
    if (net.isIPv4(addr) === false)
      throw new BedError('BED_INVALID_ARGUMENT', `not an IPv4 address: ${addr}`);
    await this.ip(['addr', 'add', `${addr}/32`, 'dev', 'lo']);
    this.addresses.add(addr);
  }

  async removeAddress(addr: string): Promise<void> {
    await this.ip(['addr', 'del', `${addr}/32`, 'dev', 'lo']);
    this.addresses.delete(addr);
  }

  /** The IPv4 addresses on lo right now, as the kernel reports them. */
  async listAddresses(): Promise<string[]> {
    const { stdout } = await this.ip(['-4', '-o', 'addr', 'show', 'dev', 'lo']);
    return [...stdout.matchAll(/inet (\d+\.\d+\.\d+\.\d+)\//g)].map((m) => m[1]!);
  }

  /** The command line that runs `argv` inside this namespace. */
  execArgv(argv: readonly string[]): string[] {
    return [IP_BINARY, 'netns', 'exec', this.name, ...argv];
  }

  /** Runs `argv` inside the namespace to completion (iptables-restore, nft -f -, conntrack -L ...). */
  async run(argv: readonly string[], input?: string): Promise<RunResult> {
    this.assertOpen();
    return runCommand(this.execArgv(argv), input);
  }

  /** Starts `argv` inside the namespace; stopped by PID, and by remove() at the latest. */
  spawn(argv: readonly string[], o: SpawnOptions = {}): NetnsProcess {
    this.assertOpen();
    let full = this.execArgv(argv);
    if (o.wrapper) full = o.wrapper.wrapArgv(full);
    const stdio = o.stdio === 'ignore' ? 'ignore' : 'pipe';
    const child = spawn(full[0]!, full.slice(1), {
      stdio: stdio === 'ignore' ? 'ignore' : ['pipe', 'pipe', 'pipe'],
      env: o.env ?? process.env,
    });
    const proc = new NetnsProcess(child);
    this.procs.add(proc);
    void proc.exited.then(() => this.procs.delete(proc));
    return proc;
  }

  /** Does the kernel still know this namespace (its bind mount under /run/netns)? */
  exists(): boolean {
    return existsSync(`/run/netns/${this.name}`);
  }

  /** Stops every process started here (SIGTERM, then SIGKILL) and deletes the namespace. Idempotent. */
  async remove(): Promise<void> {
    if (this.removed) return;
    this.removed = true;
    await Promise.all([...this.procs].map((p) => p.stop('SIGTERM', 2_000)));
    try {
      await runCommand([IP_BINARY, 'netns', 'del', this.name]);
    } catch (err) {
      if (this.exists()) throw err;
    }
    live.delete(this);
    this.unregister();
  }

  /** The exit-time form of remove(): SIGKILL by PID, `ip netns del`, no waiting on events. */
  removeSync(): void {
    if (!live.has(this)) return;
    this.removed = true;
    for (const p of this.procs) if (p.running) p.child.kill('SIGKILL');
    try {
      execFileSync(IP_BINARY, ['netns', 'del', this.name], { stdio: 'ignore' });
    } catch {
      // already gone
    }
    live.delete(this);
    this.unregister();
  }

  private assertOpen(): void {
    if (this.removed) throw new BedError('BED_CLOSED', `network namespace ${this.name} was removed`);
  }
}

/** Namespaces named like ours that this process created and has not removed (for leak checks). */
export function liveNamespaces(): string[] {
  return [...live].map((n) => n.name);
}

/** Every `snowtap-*` namespace on the machine, ours or a crashed run's. */
export async function listSnowtapNamespaces(): Promise<string[]> {
  const { stdout } = await runCommand([IP_BINARY, 'netns', 'list']);
  return stdout
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n.startsWith(NETNS_PREFIX));
}
