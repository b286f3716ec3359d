// `snowtap loadtest autoscale`: the KEDA loop end to end on one machine (issue 7, step 3), real
// parts wherever they exist and named stand-ins where they cannot run here:
// - pods: real `snowtap enricher` processes, each at its own address under a CFS-quota CPU limit
//   (cluster-bed.ts), joining the Service's endpoints when /readyz answers 200;
// - the Service: kube-proxy's data plane (iptables / nftables rules, or haproxy) in a network
//   namespace of our own; agents dial the chart's Service DNS name, resolved to the ClusterIP by a
//   per-namespace /etc/netns/<ns>/hosts (what cluster DNS would answer);
// - metrics: Debian's Prometheus in the namespace scraping every enricher and agent with the target
//   labels of the scrape path under test, at the chart's scrape interval;
// - controllers: STAND-IN (hpa-model.ts), fed the ScaledObject exactly as `helm template` renders
//   it (queries verbatim), synced every HPA sync period against that Prometheus;
// - load: >= 8 real `snowtap agent` processes fed by synthetic producers following a profile:
//   low, a step to ~2.5x one pod's capacity (measured first, in the same run), hold, low again.
// Scale-down removes the pod from the endpoints and, preStopSleepSeconds later, sends SIGTERM,
// whose drain then runs. At the end every record_id in every CSV is audited against every
// record the producers sent. Figures and checks: autoscale-report.ts.

import { createWriteStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseDiscoveryTarget } from '../agent/discovery/target';
import type { AutoscaleFacts, PodRecord, ReplicaSample, SyncRecord } from './autoscale-report';
import { onBedExit } from './bed-exit';
import { type ChartFacts, findHelm, renderChart } from './chart-render';
import { metricSum, parseMetrics, SNOWTAP_MAIN } from './cluster';
import { type BedPod, ClusterBed, type PodSpec } from './cluster-bed';
import { processCpuSeconds } from './cpu-pod';
import { auditCsv } from './csv-audit';
import { HpaModel, type SyncResult } from './hpa-model';
import { KubeApiBed } from './kube-api-bed';
import type { ProxyMode } from './kube-proxy';
import type { NetnsProcess } from './netns';
import { ProbeClient } from './pod-probe';
import { DnstapProducer, type ProducerStats } from './producer';
import { PrometheusBed, type ScrapeTarget } from './prometheus-bed';
import { hpaOptionsFromScaledObject } from './scaledobject';
import { samplePolicy } from './synthetic';

export type ScrapePath = 'servicemonitor' | 'podmonitor' | 'annotations';
export const SCRAPE_PATHS: readonly ScrapePath[] = ['servicemonitor', 'podmonitor', 'annotations'];

export interface AutoscaleOptions {
  mode: ProxyMode;
  scrapePath: ScrapePath;
  agents: number;
  /** Enricher pods' resources.limits.cpu (cores). */
  cpuLimit: number;
  /** Agents' --switch-interval (s). */
  switchInterval: number;
  /** Offered load as multiples of one pod's measured capacity. */
  lowFactor: number;
  peakFactor: number;
  /** records-offered threshold = headroom x measured capacity (unless --set gives one). */
  headroom: number;
  lowSeconds: number;
  holdSeconds: number;
  tailSeconds: number;
  /** Capacity measurement: one pod saturated by one agent at this rate for this long. */
  calibrateSeconds: number;
  calibrateRate: number;
  /** helm --set assignments (e.g. a shorter rate window for the CI form). */
  set: readonly string[];
  /** Overrides the chart's scrape interval (s). */
  scrapeInterval?: number;
  /** HPA sync period (kube-controller-manager default 15 s). */
  syncPeriod: number;
  settleTimeout: number;
  /** Enricher pods' --overload-drain (drain on overload on or off). */
  overloadDrain: boolean;
  /** Agents' --saturated-switch; undefined: the agent's default. */
  saturatedSwitch?: number;
  /**
   * Scale-down order. null: the chart's (the pod leaves the endpoints, SIGTERM after the
   * preStop sleep). A number: SIGTERM arrives this many seconds BEFORE the rules change
   * (a kube-proxy that lags; issue 7 step 3 asks for 0, 2 and 5).
   */
  sigtermLead: number | null;
  workDir?: string;
  keep?: boolean;
  progress?: (line: string) => void;
}

export const AUTOSCALE_DEFAULTS = {
  // 16, not the issue's minimum of 8: a new pod's share over its first two switch intervals is
  // carried by the few agents that land on it, and with 8 agents (each 1/8 of the load, its
  // backlog enough to saturate a 0.1-CPU pod on its own) that was mostly binomial noise: medians
  // of 5 runs 60 / 62 / 69 % (iptables / nftables / HAProxy) against 84 % (iptables) with 16
  // and the same code (loadtest/AUTOSCALE.md "16 agents").
  agents: 16,
  // One enricher takes ~230k records/s per core here (measured: 29.6k/s at 0.13 CPU-s/s), so a
  // 0.1-core pod saturates at ~23k/s and 2.5x that still leaves room on 2 cores for the agents
  // and producers that generate it.
  cpuLimit: 0.1,
  switchInterval: 10,
  lowFactor: 0.5,
  peakFactor: 2.5,
  headroom: 0.8,
  lowSeconds: 60,
  holdSeconds: 300,
  tailSeconds: 480,
  calibrateSeconds: 6,
  calibrateRate: 60_000,
  syncPeriod: 15,
  settleTimeout: 120,
  overloadDrain: true,
  sigtermLead: null,
} as const;

const LINK_PORT = 7400;
const ENRICHER_METRICS_PORT = 9400;
const AGENT_METRICS_PORT = 9401;
const PROM_ADDRESS = '10.96.0.20';
const AGENT_NET = '10.244.1.';
const SAMPLE_MS = 1000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rand = (n: number) =>
  Array.from({ length: n }, () => 'bcdfghjklmnpqrstvwxz2456789'[Math.floor(Math.random() * 27)]).join('');

/** The labels a scrape path attaches to an enricher's or an agent's target. */
export function targetLabels(
  pathKind: ScrapePath,
  role: 'enricher' | 'agent',
  pod: string,
  podLabels: Record<string, string>,
): Record<string, string> {
  const namespace = role === 'enricher' ? 'snowtap' : 'dns';
  const container = role === 'enricher' ? 'enricher' : 'snowtap-agent';
  if (pathKind === 'annotations') {
    const out: Record<string, string> = { job: 'kubernetes-pods', namespace, pod, node: 'node-1' };
    for (const [k, v] of Object.entries(podLabels)) out[k.replace(/[^a-zA-Z0-9_]/g, '_')] = v;
    return out;
  }
  // Agents have no Service: a PodMonitor (the chart's snowtap-agent) under both operator paths.
  if (role === 'agent')
    return { job: 'snowtap/snowtap-agent', namespace, pod, container, endpoint: 'snowtap-metrics' };
  if (pathKind === 'servicemonitor')
    return {
      job: 'snowtap-enricher-metrics',
      service: 'snowtap-enricher-metrics',
      namespace,
      pod,
      container,
      endpoint: 'metrics',
    };
  return { job: 'snowtap/snowtap-enricher', namespace, pod, container, endpoint: 'metrics' };
}

interface Agent {
  name: string;
  address: string;
  socket: string;
  proc: NetnsProcess;
  log: string;
}

interface Replica {
  pod: BedPod | null;
  rec: PodRecord;
  outputDir: string;
}

export async function runAutoscale(o: AutoscaleOptions): Promise<AutoscaleFacts> {
  const say = o.progress ?? (() => {});
  const helm = findHelm();
  if (!helm) throw new Error('helm not found: set HELM_BIN or run scripts/ci/get-helm.sh');
  const work = mkdtempSync(path.join(o.workDir ?? tmpdir(), 'snowtap-autoscale-'));
  const policyFile = path.join(work, 'policy.json');
  writeFileSync(policyFile, JSON.stringify(samplePolicy()));
  let chart: ChartFacts = await renderChart(helm, o.set);
  const [svcHost, svcPort] = [
    chart.enricherAddress.replace(/:\d+$/, ''),
    Number(/:(\d+)$/.exec(chart.enricherAddress)?.[1]),
  ];
  if (svcPort !== LINK_PORT)
    throw new Error(`the chart's agents dial port ${svcPort}, expected ${LINK_PORT}`);
  const scrapeInterval = o.scrapeInterval ?? chart.scrapeIntervalSeconds;
  const env: NodeJS.ProcessEnv = { SNOWTAP_LOG_LEVEL: o.keep ? 'info' : 'warn' };
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SNOWTAP_')) env[k] = v;

  const bed = await ClusterBed.create({ mode: o.mode, port: LINK_PORT, label: 'autoscale' });
  // Cluster DNS for the chart's Service name: `ip netns exec` bind-mounts /etc/netns/<ns>/hosts.
  const etcDir = path.join('/etc/netns', bed.netns.name);
  const removeEtc = () => rmSync(etcDir, { recursive: true, force: true });
  const unregisterEtc = onBedExit(removeEtc);
  mkdirSync(etcDir, { recursive: true });
  writeFileSync(path.join(etcDir, 'hosts'), `127.0.0.1 localhost\n${bed.service.clusterIP} ${svcHost}\n`);

  const probe = new ProbeClient(bed.netns);
  // agent.discovery=true: the agents watch the Service's EndpointSlice on the API server
  // stand-in, which the bed changes with kube-proxy's rules (kube-api-bed.ts).
  let kubeApi: KubeApiBed | null = null;
  const discovery = chart.agentDiscovery === null ? null : parseDiscoveryTarget(chart.agentDiscovery);
  const agents: Agent[] = [];
  const producers: DnstapProducer[] = [];
  const replicas: Replica[] = [];
  const events: { t: number; what: string }[] = [];
  const samples: AutoscaleFacts['samples'] = [];
  const replicaSamples: ReplicaSample[] = [];
  const syncs: SyncRecord[] = [];
  let prom: PrometheusBed | null = null;
  let t0 = performance.now();
  const now = () => Math.round(performance.now() - t0) / 1000;
  const event = (what: string) => {
    events.push({ t: now(), what });
    say(`[${now().toFixed(1)}s] ${what}`);
  };
  const metricsOf = async (address: string, port: number) => {
    const a = await probe.request({ op: 'http', url: `http://${address}:${port}/metrics` }, 5_000);
    if (!a.ok || a.status !== 200) return null;
    return parseMetrics(a.body ?? '');
  };

  const enricherSpec = (name: string, outputDir: string, probePeriodMs: number): PodSpec => ({
    name,
    cpuLimit: o.cpuLimit,
    env,
    probePeriodMs,
    readyTimeoutMs: 60_000,
    readiness: { http: { port: ENRICHER_METRICS_PORT, path: '/readyz' } },
    argv: (addr) => [
      process.execPath,
      SNOWTAP_MAIN,
      'enricher',
      '--listen',
      `${addr}:${LINK_PORT}`,
      '--metrics-listen',
      `${addr}:${ENRICHER_METRICS_PORT}`,
      '--output-dir',
      outputDir,
      '--policy-file',
      policyFile,
      '--id',
      name,
      '--rotate-max-age',
      '5',
      '--compression',
      'gzip',
      o.overloadDrain ? '--overload-drain' : '--no-overload-drain',
      // What the chart's Downward API env (limits.cpu, divisor 1m) tells a pod.
      '--overload-cpu-limit',
      String(Math.round(o.cpuLimit * 1000)),
    ],
  });

  const startAgent = async (name: string, address: string, enricher: string): Promise<Agent> => {
    await bed.netns.addAddress(address);
    const socket = path.join(work, `${name}.sock`);
    const proc = bed.netns.spawn(
      [
        process.execPath,
        SNOWTAP_MAIN,
        'agent',
        '--dnstap-socket',
        socket,
        `--enricher=${enricher}`,
        '--switch-interval',
        String(o.switchInterval),
        ...(o.saturatedSwitch === undefined ? [] : ['--saturated-switch', String(o.saturatedSwitch)]),
        // The calibration agent dials its pod directly.
        ...(kubeApi === null || name === 'calibration-agent' ? [] : [`--discovery=${chart.agentDiscovery}`]),
        '--metrics-listen',
        `${address}:${AGENT_METRICS_PORT}`,
        '--id',
        name,
      ],
      { env: kubeApi === null ? env : { ...env, KUBECONFIG: kubeApi.kubeconfig } },
    );
    const a: Agent = { name, address, socket, proc, log: '' };
    // --keep: each agent's whole log beside the pods' output, for a look afterwards.
    const file = o.keep ? createWriteStream(path.join(work, `${name}.log`)) : null;
    const keep = (d: string) => {
      a.log = (a.log + d).slice(-8192);
      file?.write(d);
    };
    proc.child.stdout?.setEncoding('utf8').on('data', keep);
    proc.child.stderr?.setEncoding('utf8').on('data', keep);
    const deadline = Date.now() + 30_000;
    for (;;) {
      const r = await probe.request({ op: 'http', url: `http://${address}:${AGENT_METRICS_PORT}/healthz` });
      if (r.ok && r.status === 200) return a;
      if (!proc.running || Date.now() > deadline) throw new Error(`agent ${name} did not start: ${a.log}`);
      await sleep(200);
    }
  };

  const agentSettled = async (a: Agent, sent: number) => {
    const m = await metricsOf(a.address, AGENT_METRICS_PORT).catch(() => null);
    if (m === null) return false;
    const inn = metricSum(m, 'snowtap_agent_records_in_total');
    const done =
      metricSum(m, 'snowtap_agent_records_acked_total') + metricSum(m, 'snowtap_agent_records_dropped_total');
    return inn === sent && done >= inn;
  };

  let calibrationStats: ProducerStats | null = null;
  let producerStats: ProducerStats[] = [];
  const background: Promise<unknown>[] = [];
  try {
    if (discovery !== null) {
      kubeApi = await KubeApiBed.start(bed.netns, work, {
        namespace: discovery.namespace,
        service: discovery.service,
        portName: 'link',
        port: LINK_PORT,
      });
      bed.onEndpoints = (pods) => kubeApi!.publish(pods);
    }
    say(
      `work dir ${work}; namespace ${bed.netns.name}; proxy ${o.mode}; scrape path ${o.scrapePath}; ` +
        `agents ${discovery === null ? 'dial the Service (agent.discovery off)' : `watch ${chart.agentDiscovery} (agent.discovery on; API server stand-in)`}`,
    );
    // 1. One pod's capacity, measured: a pod under the same CPU limit, outside the Service,
    //    saturated by one agent that dials it directly.
    const calOut = path.join(work, 'calibration', 'out');
    const calPod = await bed.startPod(enricherSpec('calibration', calOut, 200));
    await bed.removeFromEndpoints(calPod);
    const calAgent = await startAgent(
      'calibration-agent',
      `${AGENT_NET}250`,
      `${calPod.address}:${LINK_PORT}`,
    );
    const calProducer = new DnstapProducer({ socket: calAgent.socket, rate: o.calibrateRate, seed: 999 });
    await calProducer.start();
    const count = async () =>
      metricSum(
        (await metricsOf(calPod.address, ENRICHER_METRICS_PORT)) ?? [],
        'snowtap_enricher_records_received_total',
        { input: 'link' },
      );
    await sleep(Math.min(2000, (o.calibrateSeconds * 1000) / 3));
    const [c0, cpu0, w0] = [await count(), processCpuSeconds(calPod.proc.pid), performance.now()];
    await sleep(o.calibrateSeconds * 1000 - Math.min(2000, (o.calibrateSeconds * 1000) / 3));
    const [c1, cpu1, w1] = [await count(), processCpuSeconds(calPod.proc.pid), performance.now()];
    calibrationStats = await calProducer.stop();
    const capacity = ((c1 - c0) * 1000) / (w1 - w0);
    const calibrationCpu = ((cpu1 - cpu0) * 1000) / (w1 - w0);
    if (!(capacity > 0)) throw new Error(`calibration pod took nothing: ${calPod.log.slice(-1000)}`);
    // Unsaturated, the figure would be the offered rate, not the capacity.
    if (calibrationCpu < 0.85 * o.cpuLimit)
      throw new Error(
        `calibration did not saturate the pod (${calibrationCpu.toFixed(2)} of ${o.cpuLimit} CPU at ${Math.round(capacity)} records/s): raise --calibrate-rate`,
      );
    const calStartup = (calPod.readyAt! - calPod.startedAt) / 1000;
    say(
      `one pod's capacity: ${Math.round(capacity)} records/s at ${o.cpuLimit} CPU (used ${calibrationCpu.toFixed(2)} CPU-s/s; offered ${o.calibrateRate}/s)`,
    );
    // Its backlog drains in the background; then it is stopped like any pod.
    background.push(
      (async () => {
        const deadline = Date.now() + o.settleTimeout * 1000;
        while (!(await agentSettled(calAgent, calibrationStats!.framesSent)) && Date.now() < deadline)
          await sleep(500);
        await calAgent.proc.stop('SIGTERM', 30_000);
        await calPod.proc.stop('SIGTERM', 30_000);
      })(),
    );

    // 2. The chart again, the records-offered threshold sized to this pod (unless given).
    const threshold = Math.round(o.headroom * capacity);
    const set = o.set.some((s) => s.startsWith('autoscaling.keda.recordsOffered.threshold='))
      ? o.set
      : [...o.set, `autoscaling.keda.recordsOffered.threshold=${threshold}`];
    chart = await renderChart(helm, set);
    const hpaOptions = hpaOptionsFromScaledObject(chart.scaledObject, () => performance.now(), {
      syncPeriodSeconds: o.syncPeriod,
    });
    const hpa = new HpaModel(hpaOptions);

    await bed.netns.addAddress(PROM_ADDRESS);
    prom = await PrometheusBed.start(bed.netns, bed.probe, {
      listen: `${PROM_ADDRESS}:9090`,
      jobs: [
        { name: 'enrichers', intervalSeconds: scrapeInterval },
        { name: 'agents', intervalSeconds: scrapeInterval },
      ],
    });
    const promRef = prom;
    const updateTargets = () => {
      const live = replicas.filter((r) => r.pod?.proc.running);
      promRef.setTargets(
        'enrichers',
        live.map(
          (r): ScrapeTarget => ({
            address: `${r.pod!.address}:${ENRICHER_METRICS_PORT}`,
            labels: targetLabels(o.scrapePath, 'enricher', r.rec.name, chart.podLabels),
          }),
        ),
      );
    };

    // 3. Replicas: start -> ready (joins endpoints) -> scrape target; stop -> endpoints out,
    //    preStop sleep, SIGTERM, drain, exit.
    const hash = rand(9);
    const startReplica = async () => {
      const name = `snowtap-enricher-${hash}-${rand(5)}`;
      const outputDir = path.join(work, 'pods', name);
      const rec: PodRecord = {
        name,
        createdAt: now(),
        readyAt: null,
        terminatingAt: null,
        sigtermAt: null,
        exitedAt: null,
        exit: null,
      };
      const r: Replica = { pod: null, rec, outputDir };
      replicas.push(r);
      try {
        r.pod = await bed.startPod(enricherSpec(name, outputDir, chart.readinessPeriodSeconds * 1000));
        rec.readyAt = now();
        event(`${name} ready (${(rec.readyAt - rec.createdAt).toFixed(1)} s after creation)`);
        updateTargets();
        void r.pod.proc.exited.then(() => updateTargets());
      } catch (err) {
        rec.exit = `failed to start: ${err}`;
        event(`${name} failed to start`);
      }
    };
    const stopReplica = async (r: Replica) => {
      const pod = r.pod!;
      r.rec.terminatingAt = now();
      pod.terminatingAt = Date.now();
      const grace = (chart.terminationGracePeriodSeconds - chart.preStopSleepSeconds) * 1000;
      let stopped: ReturnType<typeof pod.proc.stop>;
      if (o.sigtermLead === null) {
        event(`${r.rec.name} terminating: out of the endpoints, SIGTERM in ${chart.preStopSleepSeconds} s`);
        const rules = bed.removeFromEndpoints(pod);
        await sleep(chart.preStopSleepSeconds * 1000);
        await rules;
        r.rec.sigtermAt = now();
        stopped = pod.proc.stop('SIGTERM', grace);
      } else {
        // SIGTERM first (no preStop sleep), the rules change sigtermLead s later: meanwhile new
        // connections still reach the draining pod, which refuses them.
        event(`${r.rec.name} terminating: SIGTERM now, out of the endpoints in ${o.sigtermLead} s`);
        r.rec.sigtermAt = now();
        stopped = pod.proc.stop('SIGTERM', grace);
        await sleep(o.sigtermLead * 1000);
        await bed.removeFromEndpoints(pod);
        r.rec.rulesChangedAt = now();
      }
      const exit = await stopped;
      r.rec.exitedAt = now();
      r.rec.exit = exit.code ?? exit.signal;
      event(
        `${r.rec.name} exited (${r.rec.exit}) ${(r.rec.exitedAt - r.rec.sigtermAt!).toFixed(1)} s after SIGTERM`,
      );
    };
    const active = () => replicas.filter((r) => r.rec.terminatingAt === null && r.rec.exit === null);

    t0 = performance.now();
    await Promise.all(Array.from({ length: hpa.replicas }, () => startReplica()));
    for (let k = 0; k < o.agents; k++)
      agents.push(
        await startAgent(
          `resolver-${hash.slice(0, 5)}-${rand(5)}`,
          `${AGENT_NET}${k + 2}`,
          chart.enricherAddress,
        ),
      );
    prom.setTargets(
      'agents',
      agents.map((a) => ({
        address: `${a.address}:${AGENT_METRICS_PORT}`,
        labels: targetLabels(o.scrapePath, 'agent', a.name, { 'snowtap.io/agent': 'true' }),
      })),
    );

    // 4. The load profile and the two loops (1 s samples, HPA syncs).
    const low = o.lowFactor * capacity;
    const peak = o.peakFactor * capacity;
    for (let k = 0; k < o.agents; k++) {
      const p = new DnstapProducer({
        socket: agents[k]!.socket,
        rate: low / o.agents,
        seed: k + 1,
        identity: `resolver-${k + 1}`,
      });
      producers.push(p);
    }
    await Promise.all(producers.map((p) => p.start()));
    event(`load low: ${Math.round(low)} records/s over ${o.agents} agents; ${hpa.replicas} replicas`);
    let offered = low;
    let running = true;
    let acking = true;
    /** Per pod, its last-seen count of overload drains (a pod that exited keeps its count). */
    const overloadDrains = new Map<string, number>();
    const sampler = (async () => {
      while (acking) {
        const overloaded: Record<string, number> = {};
        const next = Math.ceil((performance.now() - t0) / SAMPLE_MS + 1e-6) * SAMPLE_MS;
        await sleep(next - (performance.now() - t0));
        const t = now();
        const enricher: Record<string, number> = {};
        for (const r of replicas) {
          if (r.pod === null || !r.pod.proc.running) continue;
          const m = await metricsOf(r.pod.address, ENRICHER_METRICS_PORT).catch(() => null);
          if (!m) continue;
          enricher[r.rec.name] = metricSum(m, 'snowtap_enricher_records_received_total', { input: 'link' });
          overloadDrains.set(
            r.rec.name,
            metricSum(m, 'snowtap_enricher_link_drains_sent_total', { reason: 'overload' }),
          );
          overloaded[r.rec.name] = metricSum(m, 'snowtap_enricher_overload');
        }
        let backlog = 0;
        let dropped = 0;
        let resent = 0;
        let drains = 0;
        let saturatedSwitches = 0;
        let joinSwitches = 0;
        let recordsIn = 0;
        let bytesIn = 0;
        for (const a of agents) {
          const m = await metricsOf(a.address, AGENT_METRICS_PORT).catch(() => null);
          if (!m) continue;
          backlog += metricSum(m, 'snowtap_agent_backlog_bytes');
          dropped += metricSum(m, 'snowtap_agent_records_dropped_total');
          resent += metricSum(m, 'snowtap_agent_batches_resent_total');
          drains += metricSum(m, 'snowtap_agent_link_drains_total');
          saturatedSwitches += metricSum(m, 'snowtap_agent_link_saturated_switches_total');
          joinSwitches += metricSum(m, 'snowtap_agent_link_join_switches_total');
          recordsIn += metricSum(m, 'snowtap_agent_records_in_total');
          bytesIn += metricSum(m, 'snowtap_agent_bytes_in_total');
        }
        samples.push({
          t,
          enricher,
          overloaded,
          overloadDrains: [...overloadDrains.values()].reduce((a, b) => a + b, 0),
          backlogBytes: backlog,
          dropped,
          resentBatches: resent,
          drains,
          saturatedSwitches,
          joinSwitches,
          recordsIn,
          bytesIn,
        });
        replicaSamples.push({
          t,
          desired: hpa.replicas,
          ready: bed.endpoints().length,
          running: replicas.filter((r) => r.pod?.proc.running).length,
          offered,
        });
      }
    })();
    const controller = (async () => {
      let due = performance.now() + o.syncPeriod * 1000;
      while (running) {
        // Short naps so the end of the run does not wait out a whole sync period.
        while (running && performance.now() < due) await sleep(Math.min(250, due - performance.now()));
        if (!running) break;
        due += o.syncPeriod * 1000;
        const status = active().length;
        const r: SyncResult = await hpa.sync((q) => promRef.query(q), status);
        syncs.push({
          t: now(),
          statusReplicas: status,
          desired: r.desiredReplicas,
          reason: r.reason,
          triggers: r.triggers.map((x) => ({
            name: x.name,
            value: x.value,
            proposal: x.proposal,
            error: x.error,
          })),
        });
        const vals = r.triggers.map(
          (x) => `${x.name}=${x.value === null ? x.error : +x.value.toPrecision(4)}`,
        );
        say(
          `[${now().toFixed(1)}s] HPA sync: ${status} -> ${r.desiredReplicas} (${r.reason}; ${vals.join(', ')})`,
        );
        const diff = r.desiredReplicas - active().length;
        if (diff > 0) {
          event(`scale up ${active().length} -> ${r.desiredReplicas}`);
          for (let i = 0; i < diff; i++) background.push(startReplica());
        } else if (diff < 0) {
          event(`scale down ${active().length} -> ${r.desiredReplicas}`);
          // A ReplicaSet removes not-ready pods first, then the newest.
          const victims = active()
            .sort(
              (a, b) =>
                Number(a.rec.readyAt !== null) - Number(b.rec.readyAt !== null) ||
                b.rec.createdAt - a.rec.createdAt,
            )
            .slice(0, -diff)
            .filter((x) => x.pod !== null);
          for (const v of victims) background.push(stopReplica(v));
        }
      }
    })();

    await sleep(o.lowSeconds * 1000);
    for (const p of producers) p.setRate(peak / o.agents);
    offered = peak;
    const stepAt = now();
    event(`load step: ${Math.round(peak)} records/s (${o.peakFactor} x one pod)`);
    await sleep(o.holdSeconds * 1000);
    for (const p of producers) p.setRate(low / o.agents);
    offered = low;
    const stepDownAt = now();
    event(`load back to low: ${Math.round(low)} records/s`);
    await sleep(o.tailSeconds * 1000);
    offered = 0;
    producerStats = await Promise.all(producers.map((p) => p.stop()));
    const producersStoppedAt = now();
    event('producers stopped');
    const deadline = Date.now() + o.settleTimeout * 1000;
    let settled = false;
    while (Date.now() < deadline) {
      const ok = await Promise.all(agents.map((a, k) => agentSettled(a, producerStats[k]!.framesSent)));
      if (ok.every(Boolean)) {
        settled = true;
        break;
      }
      await sleep(500);
    }
    event(settled ? 'agents fully acknowledged' : 'agents NOT fully acknowledged');
    running = false;
    await controller;
    await Promise.all(background);
    await sleep(SAMPLE_MS * 1.5);
    acking = false;
    await sampler;

    // 5. Shutdown: agents, then the remaining pods (SIGTERM: drain and commit), then Prometheus.
    const agentExits: Record<string, number | string | null> = {};
    await Promise.all(
      agents.map(async (a) => {
        const e = await a.proc.stop('SIGTERM', 30_000);
        agentExits[a.name] = e.code ?? e.signal;
      }),
    );
    await Promise.all(
      replicas
        .filter((r) => r.pod?.proc.running)
        .map(async (r) => {
          r.rec.sigtermAt = now();
          const e = await r.pod!.proc.stop('SIGTERM', 30_000);
          r.rec.exit = r.rec.exit ?? `end of run: ${e.code ?? e.signal}`;
        }),
    );
    const audit = auditCsv([calOut, ...replicas.map((r) => r.outputDir)]);
    const produced = producerStats.reduce((s, p) => s + p.framesSent, calibrationStats.framesSent);
    const facts: AutoscaleFacts = {
      options: { ...o, progress: undefined },
      chart: {
        set,
        scrapeIntervalSeconds: scrapeInterval,
        rateWindowSeconds: chart.rateWindowSeconds,
        readinessPeriodSeconds: chart.readinessPeriodSeconds,
        preStopSleepSeconds: chart.preStopSleepSeconds,
        terminationGracePeriodSeconds: chart.terminationGracePeriodSeconds,
        minReplicas: hpaOptions.minReplicas,
        maxReplicas: hpaOptions.maxReplicas,
        triggers: hpaOptions.triggers.map((x) => ({ name: x.name, query: x.query, target: x.target })),
        behavior: hpaOptions.behavior ?? null,
        enricherAddress: chart.enricherAddress,
        agentDiscovery: chart.agentDiscovery,
      },
      capacity: {
        recordsPerSecond: capacity,
        cpuUsed: calibrationCpu,
        offered: o.calibrateRate,
        startupSeconds: calStartup,
      },
      low,
      peak,
      stepAt,
      stepDownAt,
      producersStoppedAt,
      events,
      samples,
      replicaSamples,
      syncs,
      pods: replicas.map((r) => r.rec),
      produced,
      framesBehind: producerStats.reduce((s, p) => s + p.framesBehind, calibrationStats.framesBehind),
      producerErrors: [...producerStats, calibrationStats]
        .map((p) => p.error)
        .filter((e): e is string => e !== null),
      settled,
      agentExits,
      audit,
      workDir: work,
    };
    return facts;
  } finally {
    for (const p of producers) await p.stop().catch(() => {});
    await Promise.allSettled(background);
    await prom?.stop().catch(() => {});
    await probe.close().catch(() => {});
    await kubeApi?.close().catch(() => {});
    await bed.close();
    removeEtc();
    unregisterEtc();
    if (!o.keep) rmSync(work, { recursive: true, force: true });
  }
}

/**
 * The CI short form (a minute or two): the same loop with the chart's rate() window cut to 20 s,
 * a 5 s scrape interval (a rate window still covers 4 scrapes), a short scale-down stabilisation,
 * 3 s switch interval and short phases. Everything else as rendered.
 */
export const AUTOSCALE_SHORT = {
  set: [
    'autoscaling.keda.rateWindow=20s',
    'autoscaling.keda.behavior.scaleDown.stabilizationWindowSeconds=15',
    'autoscaling.keda.behavior.scaleDown.policies[0].type=Pods',
    'autoscaling.keda.behavior.scaleDown.policies[0].value=1',
    'autoscaling.keda.behavior.scaleDown.policies[0].periodSeconds=15',
    'metrics.serviceMonitor.interval=5s',
    'metrics.podMonitor.interval=5s',
  ],
  switchInterval: 3,
  lowSeconds: 10,
  holdSeconds: 55,
  tailSeconds: 40,
  calibrateSeconds: 5,
} as const;
