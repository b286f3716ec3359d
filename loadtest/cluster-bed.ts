// The cluster test bed in one object: a network namespace of its own, a ClusterIP Service
// balanced by kube-proxy's data plane (iptables, nftables or the haproxy stand-in), and pods: each
// a process at its own address on the Service port, optionally under a CPU limit (a CFS quota in
// a cgroup), that joins the Service's endpoints only once its readiness probe passes, as the
// EndpointSlice controller does. Termination follows Kubernetes' order, which is no order: the
// endpoint removal and the SIGTERM happen concurrently, so terminatePod() takes the lead of the
// SIGTERM over the rules change (issue 7 asks for 0, 2 and 5 s) and the test observes the gap.
// Everything (processes, cgroups, the namespace) is removed by close() and by the exit hooks.

import { BedError } from './bed-errors';
import { SNOWTAP_MAIN } from './cluster';
import { CpuPod } from './cpu-pod';
import { type ProxyMode, type ServiceProxy, type ServiceSpec, startServiceProxy } from './kube-proxy';
import { Netns, type NetnsProcess } from './netns';
import { ProbeClient } from './pod-probe';

export const DEFAULT_CLUSTER_IP = '10.96.0.10';
/** Pods get 10.244.0.2, .3, ... in creation order; an address is never reused within a bed. */
const POD_NET = '10.244.0.';
const MAX_PODS = 250;
const KEEP_LOG_CHARS = 16_384;

export type Readiness =
  /** HTTP GET on the pod's own address must answer 200 (an enricher's /readyz). */
  | { http: { port: number; path: string } }
  /** A TCP connect to the pod's own address must succeed and the pod must say something. */
  | { tcp: { port: number } };

export interface PodSpec {
  name: string;
  /** The pod's command line, given its address. */
  argv: (address: string) => string[];
  /** Kubernetes `resources.limits.cpu` in cores; unlimited when absent. */
  cpuLimit?: number;
  env?: NodeJS.ProcessEnv;
  readiness: Readiness;
  /** Readiness probe period (default 200 ms) and how long to wait for the first success (30 s). */
  probePeriodMs?: number;
  readyTimeoutMs?: number;
}

/**
 * A `snowtap enricher` pod: link on `port`, metrics/readiness on 9400 at the pod's address, its
 * own output directory; the child gets this process's environment without SNOWTAP_* variables.
 */
export function enricherPodSpec(o: {
  name: string;
  port: number;
  outputDir: string;
  policyFile: string;
  cpuLimit?: number;
}): PodSpec {
  const env: NodeJS.ProcessEnv = { SNOWTAP_LOG_LEVEL: 'warn' };
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SNOWTAP_')) env[k] = v;
  return {
    name: o.name,
    ...(o.cpuLimit === undefined ? {} : { cpuLimit: o.cpuLimit }),
    env,
    readiness: { http: { port: 9400, path: '/readyz' } },
    argv: (addr) => [
      process.execPath,
      SNOWTAP_MAIN,
      'enricher',
      '--listen',
      `${addr}:${o.port}`,
      '--metrics-listen',
      `${addr}:9400`,
      '--output-dir',
      o.outputDir,
      '--policy-file',
      o.policyFile,
      '--id',
      o.name,
    ],
  };
}

export class BedPod {
  readonly name: string;
  readonly address: string;
  readonly proc: NetnsProcess;
  readonly cpu: CpuPod | null;
  readonly startedAt: number;
  readyAt: number | null = null;
  terminatingAt: number | null = null;
  private output = '';

  constructor(name: string, address: string, proc: NetnsProcess, cpu: CpuPod | null) {
    this.name = name;
    this.address = address;
    this.proc = proc;
    this.cpu = cpu;
    this.startedAt = Date.now();
    const keep = (d: string) => {
      this.output = (this.output + d).slice(-KEEP_LOG_CHARS);
    };
    proc.child.stdout?.setEncoding('utf8').on('data', keep);
    proc.child.stderr?.setEncoding('utf8').on('data', keep);
  }

  /** The last 16 KiB the pod wrote (stdout and stderr). */
  get log(): string {
    return this.output;
  }
}

export interface BedOptions {
  mode: ProxyMode;
  /** Service port; every pod listens on it at its own address. */
  port: number;
  clusterIP?: string;
  /** Short label for the namespace name (a-z, 0-9, -). */
  label?: string;
}

export interface Termination {
  /** How long before the endpoint removal the SIGTERM is sent (0 = same moment). */
  sigtermLeadMs?: number;
  /** SIGKILL after this long (the pod's terminationGracePeriodSeconds); default 30 s. */
  graceMs?: number;
}

export class ClusterBed {
  readonly netns: Netns;
  readonly proxy: ServiceProxy;
  readonly service: ServiceSpec;
  /** A client inside the namespace, for readiness probes and for tests. */
  readonly probe: ProbeClient;
  private readonly all: BedPod[] = [];
  private nextHost = 2;
  private closed = false;
  /** Endpoint changes, one at a time: each reads the set the previous one wrote. */
  private endpointQueue: Promise<unknown> = Promise.resolve();
  /**
   * Told every endpoint change together with kube-proxy (e.g. the EndpointSlice agents with
   * --discovery watch, kube-api-bed.ts): in a cluster both follow the same readiness.
   */
  onEndpoints: ((pods: readonly { ip: string; pod: string }[]) => Promise<void>) | null = null;

  private constructor(netns: Netns, proxy: ServiceProxy, probe: ProbeClient) {
    this.netns = netns;
    this.proxy = proxy;
    this.service = proxy.service;
    this.probe = probe;
  }

  static async create(o: BedOptions): Promise<ClusterBed> {
    const netns = await Netns.create(o.label ?? 'bed');
    try {
      const clusterIP = o.clusterIP ?? DEFAULT_CLUSTER_IP;
      await netns.addAddress(clusterIP);
      const service = { namespace: 'snowtap', name: 'enricher', portName: 'link', clusterIP, port: o.port };
      const proxy = await startServiceProxy(o.mode, netns, service);
      return new ClusterBed(netns, proxy, new ProbeClient(netns));
    } catch (err) {
      await netns.remove();
      throw err;
    }
  }

  pods(): readonly BedPod[] {
    return this.all;
  }

  /** Pods in the Service's endpoints right now. */
  endpoints(): BedPod[] {
    const eps = new Set(this.proxy.endpoints());
    return this.all.filter((p) => eps.has(p.address));
  }

  /** Starts a pod, waits for its readiness probe, then adds it to the endpoints. */
  async startPod(spec: PodSpec): Promise<BedPod> {
    if (this.closed) throw new BedError('BED_CLOSED', 'cluster bed closed');
    if (this.nextHost > MAX_PODS + 1)
      throw new BedError('BED_INVALID_ARGUMENT', `more than ${MAX_PODS} pods`);
    const address = `${POD_NET}${this.nextHost++}`;
    await this.netns.addAddress(address);
    const cpu = spec.cpuLimit === undefined ? null : CpuPod.create(spec.cpuLimit, 'bed');
    let proc: NetnsProcess;
    try {
      proc = this.netns.spawn(spec.argv(address), { wrapper: cpu ?? undefined, env: spec.env });
    } catch (err) {
      cpu?.remove();
      throw err;
    }
    const pod = new BedPod(spec.name, address, proc, cpu);
    this.all.push(pod);
    void proc.exited.then(() => pod.cpu?.remove());
    await this.waitReady(pod, spec);
    pod.readyAt = Date.now();
    await this.updateEndpoints((eps) => [...eps, address]);
    return pod;
  }

  /**
   * Read-modify-write of the endpoint set, serialised: pods started concurrently each add their
   * address to what the previous change wrote (without this, two pods becoming ready together
   * both read the old set and the second write dropped the first pod from the Service).
   */
  updateEndpoints(change: (current: readonly string[]) => string[]): Promise<void> {
    const run = this.endpointQueue.then(async () => {
      const next = change(this.proxy.endpoints());
      const named = next.map((ip) => ({ ip, pod: this.all.find((p) => p.address === ip)?.name ?? ip }));
      await Promise.all([this.proxy.setEndpoints(next), this.onEndpoints?.(named)]);
    });
    this.endpointQueue = run.catch(() => {});
    return run;
  }

  /** Takes `pod` out of the Service's endpoints (its connections stay, as conntrack keeps them). */
  removeFromEndpoints(pod: BedPod): Promise<void> {
    return this.updateEndpoints((eps) => eps.filter((a) => a !== pod.address));
  }

  private async waitReady(pod: BedPod, spec: PodSpec): Promise<void> {
    const deadline = Date.now() + (spec.readyTimeoutMs ?? 30_000);
    const period = spec.probePeriodMs ?? 200;
    for (;;) {
      if (!pod.proc.running)
        throw new BedError(
          'BED_PROBE_FAILED',
          `pod ${pod.name} exited before it was ready: ${pod.log.slice(-2000)}`,
        );
      const r = spec.readiness;
      if ('http' in r) {
        const a = await this.probe.request({
          op: 'http',
          url: `http://${pod.address}:${r.http.port}${r.http.path}`,
        });
        if (a.ok && a.status === 200) return;
      } else {
        const a = await this.probe.request({ op: 'spread', host: pod.address, port: r.tcp.port, n: 1 });
        if (a.ok && a.counts && a.counts.error === undefined) return;
      }
      if (Date.now() > deadline)
        throw new BedError(
          'BED_PROBE_FAILED',
          `pod ${pod.name} not ready within ${spec.readyTimeoutMs ?? 30_000} ms`,
        );
      await new Promise((res) => setTimeout(res, period));
    }
  }

  /**
   * Terminates a pod as Kubernetes does: SIGTERM and the endpoint removal are independent; here
   * the SIGTERM leads the rules change by `sigtermLeadMs`. Resolves with the pod's exit once it
   * is gone (SIGKILL after `graceMs`).
   */
  async terminatePod(pod: BedPod, t: Termination = {}) {
    if (!this.all.includes(pod))
      throw new BedError('BED_INVALID_ARGUMENT', `pod ${pod.name} is not in this bed`);
    const lead = t.sigtermLeadMs ?? 0;
    if (!(lead >= 0)) throw new BedError('BED_INVALID_ARGUMENT', `sigtermLeadMs: >= 0, got ${lead}`);
    pod.terminatingAt = Date.now();
    const exited = pod.proc.stop('SIGTERM', t.graceMs ?? 30_000);
    await new Promise((res) => setTimeout(res, lead));
    await this.removeFromEndpoints(pod);
    const exit = await exited;
    pod.cpu?.remove();
    return exit;
  }

  /** Stops every pod (SIGKILL), removes the rules, the cgroups and the namespace. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.all.map((p) => p.proc.stop('SIGKILL')));
    for (const p of this.all) p.cpu?.remove();
    await this.probe.close().catch(() => {});
    await this.proxy.close().catch(() => {});
    await this.netns.remove();
  }
}
