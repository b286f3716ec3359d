// A "pod with a Kubernetes CPU limit" for the test bed: a cgroup this code creates and removes,
// with the CFS bandwidth quota the kubelet derives from `resources.limits.cpu` (period 100 ms,
// quota = limit x 100 ms), so a pod limited to 0.3 CPU really gets 0.3 CPU-seconds per second
// and several pods fit on two cores. cgroup v1 (`/sys/fs/cgroup/cpu/<name>`,
// cpu.cfs_period_us + cpu.cfs_quota_us) and cgroup v2 (`/sys/fs/cgroup/<name>/cpu.max`,
// "QUOTA PERIOD") are both handled; which one is detected from the mounts.
// Processes enter by PID (addPid), or, for an exact start, through wrapArgv(): a shell writes its
// own PID into cgroup.procs and then execs the command (the PID stays the same), so the program
// never runs a single instruction outside its limit. It must wrap `ip netns exec` from outside:
// `ip netns exec` remounts /sys, which hides /sys/fs/cgroup from inside the namespace.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { BedError } from './bed-errors';
import { onBedExit } from './bed-exit';
import type { ArgvWrapper } from './netns';

export const CGROUP_ROOT = '/sys/fs/cgroup';
/** The kubelet's CFS period (cpu.cfs_period_us / the second field of cpu.max): 100 ms. */
export const CFS_PERIOD_US = 100_000;
/** The kernel's smallest quota is 1 ms; Kubernetes' smallest CPU unit is 1 m (= 100 us here). */
const MIN_QUOTA_US = 1_000;
export const CPU_POD_PREFIX = 'snowtap-';

export type CgroupVersion = 1 | 2;

/** v2 when /sys/fs/cgroup itself is the unified hierarchy, v1 when a `cpu` controller is mounted. */
export function detectCgroupVersion(root = CGROUP_ROOT): CgroupVersion | null {
  if (existsSync(path.join(root, 'cgroup.controllers'))) return 2;
  if (existsSync(path.join(root, 'cpu', 'cpu.cfs_quota_us'))) return 1;
  return null;
}

/** The quota the kubelet writes for a CPU limit in cores (0.3 -> 30000 us per 100000 us). */
export function cfsQuotaUs(limitCores: number): number {
  if (!Number.isFinite(limitCores) || limitCores <= 0)
    throw new BedError('BED_INVALID_ARGUMENT', `CPU limit ${limitCores}: expected > 0 cores`);
  // Kubernetes rounds a limit to milli-CPUs, then quota = milliCPU * period / 1000.
  const milli = Math.round(limitCores * 1000);
  return Math.max(MIN_QUOTA_US, Math.floor((milli * CFS_PERIOD_US) / 1000));
}

let counter = 0;

export class CpuPod implements ArgvWrapper {
  readonly name: string;
  readonly dir: string;
  readonly version: CgroupVersion;
  readonly limitCores: number;
  readonly quotaUs: number;
  private readonly parentProcs: string;
  private removed = false;
  private unregister: () => void = () => {};

  private constructor(name: string, version: CgroupVersion, limitCores: number, root: string) {
    this.name = name;
    this.version = version;
    this.limitCores = limitCores;
    this.quotaUs = cfsQuotaUs(limitCores);
    const base = version === 1 ? path.join(root, 'cpu') : root;
    this.dir = path.join(base, name);
    this.parentProcs = path.join(base, 'cgroup.procs');
  }

  /** Creates the cgroup with the limit applied. Needs root and a CFS-bandwidth-capable kernel. */
  static create(limitCores: number, label = 'pod', root = CGROUP_ROOT): CpuPod {
    if (!/^[a-z0-9-]{1,20}$/.test(label))
      throw new BedError('BED_INVALID_ARGUMENT', `cgroup label '${label}'`);
    const version = detectCgroupVersion(root);
    if (version === null) throw new BedError('BED_UNSUPPORTED', `no cgroup cpu controller under ${root}`);
    if (version === 2) {
      const enabled = readFileSync(path.join(root, 'cgroup.subtree_control'), 'utf8').split(/\s+/);
      // Enabling a controller for the whole machine is not this code's business.
      if (!enabled.includes('cpu'))
        throw new BedError('BED_UNSUPPORTED', `cgroup v2: 'cpu' not in ${root}/cgroup.subtree_control`);
    }
    const name = `${CPU_POD_PREFIX}${label}-${process.pid}-${++counter}`;
    const pod = new CpuPod(name, version, limitCores, root);
    mkdirSync(pod.dir);
    pod.unregister = onBedExit(() => pod.remove());
    try {
      if (version === 1) {
        writeFileSync(path.join(pod.dir, 'cpu.cfs_period_us'), String(CFS_PERIOD_US));
        writeFileSync(path.join(pod.dir, 'cpu.cfs_quota_us'), String(pod.quotaUs));
      } else writeFileSync(path.join(pod.dir, 'cpu.max'), `${pod.quotaUs} ${CFS_PERIOD_US}`);
    } catch (err) {
      pod.remove();
      throw new BedError('BED_UNSUPPORTED', `cannot set a CFS quota on ${pod.dir}`, { cause: err });
    }
    return pod;
  }

  /** The quota and period as the kernel holds them now. */
  limits(): { quotaUs: number; periodUs: number } {
    if (this.version === 1) {
      const q = Number(readFileSync(path.join(this.dir, 'cpu.cfs_quota_us'), 'utf8'));
      const p = Number(readFileSync(path.join(this.dir, 'cpu.cfs_period_us'), 'utf8'));
      return { quotaUs: q, periodUs: p };
    }
    const [q, p] = readFileSync(path.join(this.dir, 'cpu.max'), 'utf8').trim().split(' ');
    return { quotaUs: q === 'max' ? -1 : Number(q), periodUs: Number(p) };
  }

  /** Moves a running process (all its threads) into the pod. */
  addPid(pid: number): void {
    this.assertOpen();
    writeFileSync(path.join(this.dir, 'cgroup.procs'), String(pid));
  }

  pids(): number[] {
    const procs = path.join(this.dir, 'cgroup.procs');
    if (!existsSync(procs)) return [];
    return readFileSync(procs, 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map(Number);
  }

  /** Throttling counters (cpu.stat): periods with runnable tasks, how many hit the quota. */
  throttling(): { periods: number; throttled: number } {
    const stat = readFileSync(path.join(this.dir, 'cpu.stat'), 'utf8');
    const get = (k: string) => Number(new RegExp(`^${k} (\\d+)`, 'm').exec(stat)?.[1] ?? 0);
    return { periods: get('nr_periods'), throttled: get('nr_throttled') };
  }

  /** argv that enters this cgroup first, then execs `argv` with the same PID. */
  wrapArgv(argv: readonly string[]): string[] {
    this.assertOpen();
    return ['/bin/sh', '-c', 'echo $$ > "$0" && exec "$@"', path.join(this.dir, 'cgroup.procs'), ...argv];
  }

  /**
   * Removes the cgroup. Processes still inside are moved back to the parent first (they belong to
   * whoever started them; stopping them is the caller's job), so rmdir cannot fail on them.
   * Idempotent; synchronous so that it also runs from an exit hook.
   */
  remove(): void {
    if (this.removed) return;
    this.removed = true;
    this.unregister();
    if (!existsSync(this.dir)) return;
    for (const pid of this.pids()) {
      try {
        writeFileSync(this.parentProcs, String(pid));
      } catch {
        // exited meanwhile
      }
    }
    for (let attempt = 0; ; attempt++) {
      try {
        rmdirSync(this.dir);
        return;
      } catch (err) {
        // A process that just exited can hold the cgroup for a moment.
        if (attempt >= 50 || (err as NodeJS.ErrnoException).code !== 'EBUSY') throw err;
        execFileSync('sleep', ['0.02']);
      }
    }
  }

  exists(): boolean {
    return existsSync(this.dir);
  }

  private assertOpen(): void {
    if (this.removed) throw new BedError('BED_CLOSED', `cgroup ${this.name} was removed`);
  }
}

/** CPU time (user + system, all threads) a process has used so far, in seconds, from /proc. */
export function processCpuSeconds(pid: number, clockTicks = 100): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // comm (field 2) may contain spaces and parentheses: fields resume after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of the whole line, i.e. 11 and 12 after comm and state.
  return (Number(fields[11]) + Number(fields[12])) / clockTicks;
}

/** CPU-seconds per second a process uses over `ms` (sampled from /proc/PID/stat). */
export async function measureCpuRate(pid: number, ms: number): Promise<number> {
  const t0 = process.hrtime.bigint();
  const c0 = processCpuSeconds(pid);
  await new Promise((r) => setTimeout(r, ms));
  const c1 = processCpuSeconds(pid);
  const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  return (c1 - c0) / elapsed;
}
