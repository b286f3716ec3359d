// `snowtap loadtest simulate`: a fleet model in simulated time. Every agent is the agent's
// REAL LinkClient (stripes, switch timers with jitter, make-before-break, collision
// re-dial, discovery wiring) running on a SimClock with a socket-less connection factory;
// kube-proxy is modelled as a uniformly random ready pod per new connection (sim-link.ts).
// Only the traffic is a model, one of two kinds. Fluid (the default; fleets of any size): an
// agent's rate is split over its stripes' active connections, a pod over capacity delivers
// its capacity, and demand an agent cannot place on a saturated pod moves to its stripes on
// pods with headroom (the client's roomiest-window send does that: windows on a slow pod
// stay full). Batches (`batches`; validation-sized fleets): each agent reads its input in
// blocks as a file replay does and seals batches as its batcher does; they go through the
// agent's real buffer and pump onto connections whose pods receive, process at their
// capacity and acknowledge them (sim-link.ts), and a second's load is what each pod
// received in it: the batch-count noise a real pod's counter has, which a fluid split
// lacks. Pods run the enricher's own drain-on-overload controller
// (enricher/server/overload.ts) on the modelled load.
//
// Output, for each --active-connections value: time to fair share after each scale event,
// per-pod load max/mean and p99/mean over time, new connections per second into the
// Service, collisions, overload drains, and the share of offered records the fleet delivers.

import { EventEmitter } from 'node:events';
import { BatchBuffer } from '../agent/buffer';
import {
  attachDiscovery,
  type DiscoveryMode,
  type EndpointWatcher,
  type ReadyEndpoint,
} from '../agent/discovery/index';
import { LinkClient } from '../agent/link';
import { AGENT_DEFAULTS } from '../agent/options';
import type { TimerHandle } from '../common/clock';
import { silentLogger } from '../common/log';
import { OVERLOAD_DRAIN_DEADLINE_MS, OVERLOAD_DRAIN_REASON } from '../enricher/server/link-server';
import { type OverloadCandidate, OverloadController } from '../enricher/server/overload';
import { prng } from './prng';
import { SimClock } from './sim-clock';
import { SIM_SERVICE, type SimConnection, SimNet } from './sim-link';

export type RateSpec =
  | { kind: 'zipf'; s: number }
  | { kind: 'uniform'; lo: number; hi: number }
  | { kind: 'list'; values: number[] };

/** How agents find pods: the Service only (timers), the Service plus switch-now on EndpointSlice changes, or pod addresses (EndpointSlice-aware). */
export const SIM_MODES = ['service', 'service-watch', 'direct'] as const;
export type SimMode = (typeof SIM_MODES)[number];

/** Discrete traffic: how an agent's records become batches. */
export interface BatchTraffic {
  /** Records the agent takes in at once, every blockRecords / rate seconds (a replay's read block). */
  blockRecords: number;
  /** The agent's --batch-records and --batch-linger-ms. */
  batchRecords: number;
  lingerMs: number;
}

export interface ScaleEvent {
  atS: number;
  pods: number;
}

export interface SimulateOptions {
  agents: number;
  rates: RateSpec;
  /** Sum of all agents' rates (records/s); for `list` ignored (the values are rates). */
  totalRate: number;
  pods: number;
  podCapacity: number;
  scale: ScaleEvent[];
  switchIntervalS: number;
  switchJitter: number;
  activeConnections: number;
  mode: SimMode;
  durationS: number;
  seed: number;
  /** Placements averaged per simulated second (default 1: the placement at the second's end). */
  subSamples?: number;
  /** A pod leaving drains its connections with this deadline. */
  drainDeadlineMs?: number;
  /**
   * Drain on overload as the enricher does it by default (enricher/server/overload.ts, the same
   * controller): each pod's utilisation is min(1, offered load / capacity) per second; an
   * overloaded pod drains a share of its carrying connections (each agent takes it as a switch).
   * Default true; false models `--no-overload-drain`.
   */
  overloadDrain?: boolean;
  /**
   * The agents' --saturated-switch (default: the agent's). The model says when a window is
   * full: an active connection on a pod offered more than its capacity (sim-link.ts windowFull).
   */
  saturatedSwitch?: number;
  /** Batch traffic instead of the fluid split (see the file's head). */
  batches?: BatchTraffic;
}

export const SIMULATE_DEFAULTS = {
  agents: 1000,
  totalRate: 15_000_000,
  pods: 20,
  podCapacity: 800_000,
  switchIntervalS: 30,
  switchJitter: 0.2,
  durationS: 240,
  seed: 1,
} as const;

/** A pod is at its fair share once newcomers carry this share of the mean pod load. */
export const FAIR_SHARE = 0.9;
/** The fleet's start (every agent dials) is left out of the new-connection peak. */
const START_SETTLE_S = 10;
/** Load redistribution rounds per sample (the client's roomiest-window send, as a fluid). */
const REDISTRIBUTE_ROUNDS = 8;

export interface SimSample {
  t: number;
  pods: number;
  /** max / mean and p99 / mean of the per-pod offered load. */
  maxMean: number;
  p99Mean: number;
  /** Records/s delivered / offered, whole fleet. */
  delivered: number;
  /** Share of the mean load the pods added by the latest scale event carry (NaN before one). */
  newcomerShare: number;
  newConnections: number;
  /** Every pod's share of the total offered load, pods in creation order (distribution checks). */
  shares: number[];
}

export interface ScaleResult {
  atS: number;
  pods: number;
  grew: boolean;
  /** Seconds until the newcomers carried FAIR_SHARE of the mean pod load (null: not within the run, or no newcomers). */
  fairShareS: number | null;
}

export interface SimRunResult {
  activeConnections: number;
  mode: SimMode;
  samples: SimSample[];
  scale: ScaleResult[];
  /** Over the last half of the run. */
  steady: { maxMean: number; p99Mean: number; delivered: number };
  /** Over the last half of the run. */
  newConnectionsPerS: { mean: number; max: number; peakAfterStart: number };
  collisions: number;
  /** Drains sent by overloaded pods. */
  overloadDrains: number;
  /** Simulated events and wall time (the cost of running the real client). */
  events: number;
  wallS: number;
}

/** Per-agent rates (records/s). */
export function agentRates(o: Pick<SimulateOptions, 'agents' | 'rates' | 'totalRate' | 'seed'>): number[] {
  const r = o.rates;
  let w: number[];
  if (r.kind === 'list') return Array.from({ length: o.agents }, (_, i) => r.values[i % r.values.length]!);
  if (r.kind === 'zipf') w = Array.from({ length: o.agents }, (_, i) => 1 / (i + 1) ** r.s);
  else {
    const rand = prng(o.seed ^ 0x5eed);
    w = Array.from({ length: o.agents }, () => r.lo + (r.hi - r.lo) * rand());
  }
  const sum = w.reduce((a, b) => a + b, 0);
  return w.map((x) => (x / sum) * o.totalRate);
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

const mean = (xs: number[]) => (xs.length === 0 ? Number.NaN : xs.reduce((a, b) => a + b, 0) / xs.length);

/** One run: the fleet, one --active-connections value. */
export async function simulate(o: SimulateOptions): Promise<SimRunResult> {
  const started = performance.now();
  const clock = new SimClock();
  const net = new SimNet(clock, prng(o.seed), o.batches !== undefined);
  const log = silentLogger();
  for (let i = 0; i < o.pods; i++) net.addPod(o.podCapacity);
  const rates = agentRates(o);
  const watcher = new EventEmitter();
  const readyList = (): ReadyEndpoint[] =>
    net.ready().map((p) => ({ address: p.id, port: SIM_SERVICE.port, podName: p.id }));
  const clients: LinkClient[] = [];
  const buffers: BatchBuffer[] = [];
  for (let i = 0; i < o.agents; i++) {
    const buffer = new BatchBuffer({
      bufferBytes: o.batches === undefined ? 1 << 20 : 1 << 30,
      whenFull: 'drop-newest',
      log,
      onDrop: () => {},
    });
    const client = new LinkClient({
      endpoints: [SIM_SERVICE],
      agentId: `agent-${i}`,
      incarnation: 'sim-00000001',
      maxInFlight: 32,
      handshakeTimeoutMs: 10_000,
      switchIntervalMs: o.switchIntervalS * 1000,
      switchJitter: o.switchJitter,
      saturatedSwitch: o.saturatedSwitch ?? AGENT_DEFAULTS.saturatedSwitch,
      retireTimeoutMs: 20_000,
      backoffStartMs: 100,
      backoffMaxMs: 10_000,
      configRetryMs: 30_000,
      activeConnections: o.activeConnections,
      buffer,
      log,
      clock,
      random: prng(o.seed * 7919 + i + 1),
      connect: net.connector(),
    });
    if (o.mode !== 'service') {
      attachDiscovery(watcher as unknown as EndpointWatcher, client, {
        mode: (o.mode === 'direct' ? 'direct' : 'service') as DiscoveryMode,
        service: SIM_SERVICE,
        agentKey: `agent-${i}`,
        clock,
        random: prng(o.seed * 104_729 + i + 1),
      });
    }
    clients.push(client);
    buffers.push(buffer);
  }
  watcher.emit('endpoints', readyList(), {});
  // Agents start spread over the first second (a fleet does not start in one instant).
  const startRand = prng(o.seed + 17);
  for (const c of clients) clock.setTimeout(() => c.start(), Math.floor(startRand() * 1000));
  if (o.batches !== undefined) {
    buffers.forEach((b, i) => {
      feedBatches(b, rates[i]!, o.batches!, clock, startRand);
    });
  }

  const overload = new PodOverload(net, o.overloadDrain ?? true);
  const samples: SimSample[] = [];
  const scale: ScaleResult[] = [];
  const events = [...o.scale].sort((a, b) => a.atS - b.atS);
  let newcomers = new Set<string>();
  let lastScale: ScaleResult | null = null;
  const lastReceived = new Map<string, number>();
  for (let t = 1; t <= o.durationS; t++) {
    while (events.length > 0 && events[0]!.atS < t) {
      const e = events.shift()!;
      await clock.run(e.atS * 1000);
      const before = new Set(net.pods.keys());
      const ready = net.ready();
      if (e.pods > ready.length) for (let k = ready.length; k < e.pods; k++) net.addPod(o.podCapacity);
      else for (const p of ready.slice(e.pods)) net.removePod(p.id, o.drainDeadlineMs ?? 20_000);
      newcomers = new Set([...net.pods.keys()].filter((id) => !before.has(id)));
      lastScale = { atS: e.atS, pods: e.pods, grew: newcomers.size > 0, fairShareS: null };
      scale.push(lastScale);
      watcher.emit('endpoints', readyList(), {});
    }
    const sum =
      o.batches === undefined
        ? await fluidLoad(t, o.subSamples ?? 1, clients, rates, net, clock)
        : await takenUpLoad(t, net, clock, lastReceived);
    for (const p of net.ready()) if (!sum.has(p.id)) sum.set(p.id, 0);
    const s = summarize(t, sum, rates, net, newcomers);
    samples.push(s);
    overload.tick(t * 1000, sum, clients, rates);
    if (lastScale !== null && lastScale.fairShareS === null && s.newcomerShare >= FAIR_SHARE)
      lastScale.fairShareS = t - lastScale.atS;
  }
  for (const c of clients) void c.close();
  await clock.run(clock.now() + 60_000);
  const tail = samples.slice(Math.floor(samples.length / 2));
  // New connections per second in the steady half (the fleet's start is one burst of dials).
  const conns = Array.from(
    { length: o.durationS - tail[0]!.t + 1 },
    (_, k) => net.newConnections[tail[0]!.t - 1 + k] ?? 0,
  );
  return {
    activeConnections: o.activeConnections,
    mode: o.mode,
    samples,
    scale,
    steady: {
      maxMean: mean(tail.map((s) => s.maxMean)),
      p99Mean: mean(tail.map((s) => s.p99Mean)),
      delivered: mean(tail.map((s) => s.delivered)),
    },
    newConnectionsPerS: {
      mean: mean(conns),
      max: Math.max(0, ...conns),
      peakAfterStart: Math.max(0, ...net.newConnections.slice(START_SETTLE_S, o.durationS)),
    },
    collisions: clients.reduce((n, c) => n + c.stats.collisions, 0),
    overloadDrains: overload.drains,
    events: clock.fired,
    wallS: (performance.now() - started) / 1000,
  };
}

/**
 * Fluid traffic, second `t`: the mean of `k` placements within it (a 1 s counter on the real
 * bed integrates over the switches inside the second).
 */
async function fluidLoad(
  t: number,
  k: number,
  clients: LinkClient[],
  rates: number[],
  net: SimNet,
  clock: SimClock,
): Promise<Map<string, number>> {
  const sum = new Map<string, number>();
  for (let j = k - 1; j >= 0; j--) {
    await clock.run(t * 1000 - (j * 1000) / k);
    const load = placeLoad(clients, rates, net);
    for (const [p, l] of load) sum.set(p, (sum.get(p) ?? 0) + l / k);
    markFullWindows(clients, load, net);
  }
  return sum;
}

/** Batch traffic, second `t`: the records each ready pod took up in it. */
async function takenUpLoad(
  t: number,
  net: SimNet,
  clock: SimClock,
  lastReceived: Map<string, number>,
): Promise<Map<string, number>> {
  await clock.run(t * 1000);
  const sum = new Map<string, number>();
  for (const p of net.ready()) {
    sum.set(p.id, p.received - (lastReceived.get(p.id) ?? 0));
    lastReceived.set(p.id, p.received);
  }
  return sum;
}

/**
 * Batch traffic for one agent: a block of records every blockRecords / rate seconds (random
 * phase); full batches are sealed at once, a partial one when its linger expires, unless
 * the next block fills it first (agent/batcher.ts).
 */
function feedBatches(
  buffer: BatchBuffer,
  rate: number,
  t: BatchTraffic,
  clock: SimClock,
  random: () => number,
): void {
  const frame = Buffer.alloc(64);
  const every = (t.blockRecords / rate) * 1000;
  let seq = 0;
  let open = 0;
  let linger: TimerHandle | null = null;
  const seal = (records: number) => buffer.add(frame, ++seq, 'sim-00000001', records, true);
  const block = () => {
    open += t.blockRecords;
    while (open >= t.batchRecords) {
      seal(t.batchRecords);
      open -= t.batchRecords;
    }
    if (open === 0 && linger !== null) {
      clock.clearTimeout(linger);
      linger = null;
    } else if (open > 0 && linger === null) {
      linger = clock.setTimeout(() => {
        linger = null;
        if (open > 0) seal(open);
        open = 0;
      }, t.lingerMs);
    }
    clock.setTimeout(block, every);
  };
  clock.setTimeout(block, random() * every);
}

/** Drain on overload per pod: the enricher's own controller, fed the modelled utilisation. */
class PodOverload {
  private readonly controllers = new Map<string, OverloadController>();
  drains = 0;

  constructor(
    private readonly net: SimNet,
    private readonly enabled: boolean,
  ) {}

  /** One second: `load` per pod (offered records/s), then the drains its controller asks for. */
  tick(now: number, load: ReadonlyMap<string, number>, clients: LinkClient[], rates: number[]): void {
    const carrying = new Map<string, (OverloadCandidate & { conn: SimConnection })[]>();
    clients.forEach((c, i) => {
      const on = c.stripes.filter((s) => s.active !== null);
      for (const s of on) {
        const conn = s.active as SimConnection;
        const pod = conn.pod?.id;
        if (pod === undefined) continue;
        const list = carrying.get(pod) ?? [];
        list.push({ agentId: `agent-${i}`, recentBytes: rates[i]! / on.length, conn });
        carrying.set(pod, list);
      }
    });
    for (const pod of this.net.ready()) {
      let ctl = this.controllers.get(pod.id);
      if (ctl === undefined) {
        ctl = new OverloadController({ enabled: this.enabled });
        this.controllers.set(pod.id, ctl);
      }
      const u = Math.min(1, (load.get(pod.id) ?? 0) / pod.capacity);
      const chosen = ctl.tick(now, u, carrying.get(pod.id) ?? []) as (OverloadCandidate & {
        conn: SimConnection;
      })[];
      for (const c of chosen) c.conn.drain(OVERLOAD_DRAIN_DEADLINE_MS, OVERLOAD_DRAIN_REASON);
      this.drains += chosen.length;
    }
  }
}

/** Per-pod load now: each agent's rate over its stripes' active connections, capacity applied. */
function placeLoad(clients: LinkClient[], rates: number[], net: SimNet): Map<string, number> {
  const pods = net.ready();
  const cap = new Map(pods.map((p) => [p.id, p.capacity]));
  // alloc[i] = [pod, records/s] per active stripe of agent i
  const alloc: [string, number][][] = clients.map((c, i) => {
    const on = c.stripes
      .map((s) => s.active?.agreed?.enricherId)
      .filter((id): id is string => id !== undefined);
    return on.map((pod) => [pod, rates[i]! / on.length]);
  });
  let load = new Map<string, number>();
  const loads = () => {
    load = new Map(pods.map((p) => [p.id, 0]));
    for (const a of alloc) for (const [p, r] of a) load.set(p, (load.get(p) ?? 0) + r);
  };
  const factor = (p: string) => {
    const l = load.get(p) ?? 0;
    const c = cap.get(p) ?? 0;
    return l <= c ? 1 : c / l;
  };
  for (let round = 0; round < REDISTRIBUTE_ROUNDS; round++) {
    loads();
    for (let i = 0; i < alloc.length; i++) {
      const a = alloc[i]!;
      if (a.length < 2) continue;
      // What a saturated pod does not take moves to this agent's stripes on pods with headroom;
      // with none, the agent keeps offering (its backlog grows).
      const open = a.flatMap(([p], k) => (factor(p) < 1 ? [] : [k]));
      if (open.length === 0 || open.length === a.length) continue;
      let unmet = 0;
      a.forEach(([p, r], k) => {
        const f = factor(p);
        if (f < 1) {
          unmet += r * (1 - f);
          a[k] = [p, r * f];
        }
      });
      for (const k of open) a[k]![1] += unmet / open.length;
    }
  }
  loads();
  return load;
}

/** Windows on a pod offered more than its capacity stay full until the next placement. */
function markFullWindows(clients: LinkClient[], load: ReadonlyMap<string, number>, net: SimNet): void {
  const cap = new Map(net.ready().map((p) => [p.id, p.capacity]));
  for (const c of clients) {
    for (const s of c.stripes) {
      const conn = s.active as SimConnection | null;
      const pod = conn?.agreed?.enricherId;
      if (conn === null || pod === undefined) continue;
      conn.windowFull = (load.get(pod) ?? 0) > (cap.get(pod) ?? Number.POSITIVE_INFINITY);
    }
  }
}

/** Figures of one second from its (averaged) per-pod load. */
function summarize(
  t: number,
  load: Map<string, number>,
  rates: number[],
  net: SimNet,
  newcomers: Set<string>,
): SimSample {
  const pods = net.ready();
  const cap = new Map(pods.map((p) => [p.id, p.capacity]));
  const offered = rates.reduce((x, y) => x + y, 0);
  let delivered = 0;
  for (const [p, l] of load) delivered += Math.min(l, cap.get(p) ?? 0);
  const values = [...load.values()].sort((x, y) => x - y);
  const m = mean(values);
  const fresh = [...load].filter(([p]) => newcomers.has(p)).map(([, l]) => l);
  const s = Math.floor(t) - 1;
  return {
    t,
    pods: pods.length,
    maxMean: values[values.length - 1]! / m,
    p99Mean: quantile(values, 0.99) / m,
    delivered: delivered / offered,
    newcomerShare: fresh.length === 0 ? Number.NaN : mean(fresh) / m,
    newConnections: net.newConnections[s] ?? 0,
    shares: [...load.values()].map((v) => v / (m * values.length)),
  };
}

/** Two-sample Kolmogorov–Smirnov distance: the largest gap between the empirical CDFs. */
export function ksDistance(a: readonly number[], b: readonly number[]): number {
  const x = [...a].sort((p, q) => p - q);
  const y = [...b].sort((p, q) => p - q);
  let i = 0;
  let j = 0;
  let d = 0;
  while (i < x.length && j < y.length) {
    const v = Math.min(x[i]!, y[j]!);
    while (i < x.length && x[i]! <= v) i++;
    while (j < y.length && y[j]! <= v) j++;
    d = Math.max(d, Math.abs(i / x.length - j / y.length));
  }
  return d;
}

/** A fixed-width table of runs (the JSON has every sample). */
export function formatSimTable(runs: readonly SimRunResult[]): string {
  const head = [
    'N',
    'mode',
    'fair share s',
    'max/mean',
    'p99/mean',
    'delivered',
    'new conn/s mean',
    'max',
    'peak',
    'collisions',
    'overload drains',
    'events',
    'wall s',
  ];
  const rows = runs.map((r) => [
    String(r.activeConnections),
    r.mode,
    r.scale
      .map((e) => (e.fairShareS === null ? (e.grew ? 'never' : 'n/a') : String(e.fairShareS)))
      .join(',') || '-',
    r.steady.maxMean.toFixed(2),
    r.steady.p99Mean.toFixed(2),
    `${(100 * r.steady.delivered).toFixed(1)}%`,
    r.newConnectionsPerS.mean.toFixed(1),
    String(r.newConnectionsPerS.max),
    String(r.newConnectionsPerS.peakAfterStart),
    String(r.collisions),
    String(r.overloadDrains),
    String(r.events),
    r.wallS.toFixed(1),
  ]);
  const widths = head.map((h, k) => Math.max(h.length, ...rows.map((r) => r[k]!.length)));
  const line = (cells: string[]) => cells.map((c, k) => c.padStart(widths[k]!)).join('  ');
  return [line(head), ...rows.map(line)].join('\n') + '\n';
}
