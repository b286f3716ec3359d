// `snowtap loadtest <scenario>`: load generation and measurement with real processes.
//
//   snowtap loadtest rebalance [options]   new enrichers get their share behind a Service
//   snowtap loadtest producer --socket PATH --rate N --duration S   synthetic dnstap sender
//
// Exit codes: 0 every criterion met, 1 a criterion failed (or a run broke), 2 bad usage.

import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { AGENT_DEFAULTS, AGENT_LIMITS } from '../agent/options';
import { HAPROXY_BINARY, haproxyAvailable } from '../loadtest/haproxy';
import { PRODUCER_TICK_MS, runProducer } from '../loadtest/producer';
import { REBALANCE_DEFAULTS, type RebalanceResult, runRebalance } from '../loadtest/rebalance';
import { formatShareTable, writeReport } from '../loadtest/report';
import {
  formatSimTable,
  type RateSpec,
  type ScaleEvent,
  SIM_MODES,
  SIMULATE_DEFAULTS,
  type SimMode,
  type SimRunResult,
  simulate,
} from '../loadtest/simulate';
import { isIntIn } from '../proto/kit/index';
import { autoscaleMain } from './loadtest-autoscale';
import { formatHelp, type OptionSpec, parseCommand, UsageError } from './options';

const D = REBALANCE_DEFAULTS;

export const REBALANCE_OPTIONS: readonly OptionSpec[] = [
  {
    name: 'switch-interval',
    kind: 'number',
    default: D.switchInterval,
    min: 0.1,
    max: 3600,
    arg: 'SECONDS',
    help: "agents' --switch-interval in the switching run",
  },
  {
    name: 'switch',
    kind: 'bool',
    default: true,
    help: 'run with switching on; --no-switch runs only with --switch-interval 0',
  },
  {
    name: 'compare',
    kind: 'bool',
    default: true,
    help: 'after the switching run, run again with switching off for comparison',
  },
  {
    name: 'duration',
    kind: 'number',
    default: D.observe,
    min: 1,
    arg: 'SECONDS',
    help: 'observation after the new enricher is added',
  },
  {
    name: 'warmup',
    kind: 'number',
    default: D.warmup,
    min: 0,
    arg: 'SECONDS',
    help: 'traffic before the new enricher is added',
  },
  {
    name: 'after-remove',
    kind: 'number',
    default: D.afterRemove,
    min: 1,
    arg: 'SECONDS',
    help: 'traffic after an enricher is removed (NotReady + SIGTERM)',
  },
  {
    name: 'agents',
    kind: 'int',
    default: D.agents,
    min: 1,
    max: 200,
    arg: 'N',
    help: 'agent processes, one synthetic producer each',
  },
  {
    name: 'enrichers',
    kind: 'int',
    default: D.enrichers,
    min: 2,
    max: 50,
    arg: 'N',
    help: 'enrichers at the start (one more is added)',
  },
  {
    name: 'rate',
    kind: 'number',
    default: D.rate,
    min: 1,
    arg: 'RECORDS_PER_S',
    help: 'total dnstap frames/s over all producers',
  },
  {
    name: 'report-dir',
    kind: 'string',
    default: './loadtest-report',
    arg: 'DIR',
    help: 'where report.json and index.html go',
  },
  {
    name: 'keep',
    kind: 'bool',
    default: false,
    help: 'keep the work dir (logs, sockets, CSV) even when the run passed',
  },
  {
    name: 'haproxy',
    kind: 'string',
    default: HAPROXY_BINARY,
    arg: 'PATH',
    help: 'the haproxy binary standing in for kube-proxy',
  },
];

export const PRODUCER_OPTIONS: readonly OptionSpec[] = [
  {
    name: 'socket',
    kind: 'string',
    arg: 'PATH|HOST:PORT',
    help: "the agent's --dnstap-socket (or --dnstap-tcp address); required",
  },
  { name: 'rate', kind: 'number', default: 10_000, min: 1, arg: 'FRAMES_PER_S', help: 'steady send rate' },
  {
    name: 'duration',
    kind: 'number',
    default: 10,
    min: 0.1,
    arg: 'SECONDS',
    help: 'how long to send before STOP',
  },
  {
    name: 'tick-ms',
    kind: 'int',
    default: PRODUCER_TICK_MS,
    min: 1,
    max: 1000,
    arg: 'MS',
    help: 'send what the rate allows every MS milliseconds (a burst per tick)',
  },
  {
    name: 'frames-per-write',
    kind: 'int',
    default: 0,
    min: 0,
    max: 1_000_000,
    arg: 'N',
    help:
      'at most N frames per socket write (1: one write per frame, as unbound does; BIND via libfstrm ' +
      'writes a few KiB at a time); 0: as many as fit in 256 KiB',
  },
  {
    name: 'seed',
    kind: 'int',
    default: 1,
    min: 0,
    max: 0xffffffff,
    arg: 'N',
    help: 'traffic generator seed',
  },
  {
    name: 'identity',
    kind: 'string',
    default: 'loadtest-resolver',
    arg: 'NAME',
    help: 'dnstap identity of the "DNS server"',
  },
];

const S = SIMULATE_DEFAULTS;

export const SIMULATE_OPTIONS: readonly OptionSpec[] = [
  {
    name: 'agents',
    kind: 'int',
    default: S.agents,
    min: 1,
    max: 100_000,
    arg: 'N',
    help: 'agents in the fleet',
  },
  {
    name: 'rates',
    kind: 'string',
    default: 'zipf:1',
    arg: 'zipf[:S]|uniform[:LO-HI]|list:R,...',
    help: 'per-agent rate distribution: Zipf with exponent S, uniform weights in [LO, HI], or a list of records/s (repeated over the agents)',
  },
  {
    name: 'total-rate',
    kind: 'number',
    default: S.totalRate,
    min: 1,
    arg: 'RECORDS_PER_S',
    help: 'sum of the agents rates (zipf, uniform; a list gives rates itself)',
  },
  {
    name: 'pods',
    kind: 'int',
    default: S.pods,
    min: 1,
    max: 10_000,
    arg: 'N',
    help: 'enricher pods at the start',
  },
  {
    name: 'pod-capacity',
    kind: 'number',
    default: S.podCapacity,
    min: 1,
    arg: 'RECORDS_PER_S',
    help: 'records/s one pod processes (an assumption: measure it with the bench and pass it)',
  },
  {
    name: 'scale',
    kind: 'list',
    default: ['30@60'],
    arg: 'PODS@SECONDS[,...]',
    help: 'scale events: the ready pod count becomes PODS at SECONDS (down: pods drain); none: no event',
  },
  {
    name: 'switch-interval',
    kind: 'number',
    default: S.switchIntervalS,
    min: 0,
    max: 86_400,
    arg: 'SECONDS',
    help: "agents' --switch-interval (±20% jitter)",
  },
  {
    name: 'active-connections',
    kind: 'list',
    default: ['1', '3'],
    arg: 'N[,...]',
    help: 'one run per value of the agents --active-connections',
  },
  {
    name: 'mode',
    kind: 'enum',
    values: SIM_MODES,
    default: 'service',
    help: 'service: dial the ClusterIP, switch on timers; service-watch: also switch at once on EndpointSlice changes; direct: dial pod addresses (EndpointSlice-aware)',
  },
  { name: 'duration', kind: 'number', default: S.durationS, min: 1, arg: 'SECONDS', help: 'simulated time' },
  { name: 'seed', kind: 'int', default: S.seed, min: 0, max: 0xffffffff, arg: 'N', help: 'random seed' },
  {
    name: 'overload-drain',
    kind: 'bool',
    default: true,
    help: 'pods drain on overload as enrichers do by default (--no-overload-drain: off)',
  },
  {
    name: 'saturated-switch',
    kind: 'number',
    default: AGENT_DEFAULTS.saturatedSwitch,
    min: AGENT_LIMITS.saturatedSwitch.min,
    max: AGENT_LIMITS.saturatedSwitch.max,
    arg: 'FRACTION',
    help: "agents' --saturated-switch (1: switch only at the interval); a window counts as full on a pod offered more than its capacity",
  },
  {
    name: 'batch-traffic',
    kind: 'int',
    min: 1,
    max: 100_000_000,
    arg: 'RECORDS',
    help: "discrete batches instead of the fluid split: each agent takes in RECORDS at a time (a replay block), seals batches at the agent's defaults, and pods take them up at their capacity (validation-sized fleets; slow for thousands of agents)",
  },
  { name: 'json', kind: 'string', arg: 'PATH', help: 'write every run (all samples) as JSON here' },
];

/** zipf[:S] | uniform[:LO-HI] | list:R,... */
export function parseRates(v: string): RateSpec {
  const [kind, arg] = [v.split(':')[0], v.includes(':') ? v.slice(v.indexOf(':') + 1) : undefined];
  const bad = () => new UsageError(`--rates: expected zipf[:S], uniform[:LO-HI] or list:R,..., got ${v}`);
  if (kind === 'zipf') {
    const s = arg === undefined ? 1 : Number(arg);
    if (!(s >= 0 && s <= 10)) throw bad();
    return { kind, s };
  }
  if (kind === 'uniform') {
    const [lo, hi] = arg === undefined ? [1, 1] : arg.split('-').map(Number);
    if (!(lo! > 0 && hi! >= lo!)) throw bad();
    return { kind, lo: lo!, hi: hi! };
  }
  if (kind === 'list' && arg !== undefined) {
    const values = arg.split(',').map(Number);
    if (values.some((x) => !(x >= 0))) throw bad();
    return { kind, values };
  }
  throw bad();
}

function parseScale(items: readonly string[]): ScaleEvent[] {
  if (items.length === 1 && items[0] === 'none') return [];
  return items.map((it) => {
    const m = /^(\d+)@(\d+(?:\.\d+)?)$/.exec(it.trim());
    if (m === null) throw new UsageError(`--scale: expected PODS@SECONDS, got ${it}`);
    return { pods: Number(m[1]), atS: Number(m[2]) };
  });
}

const SIMULATE_HELP = formatHelp(
  'snowtap loadtest simulate [options]',
  "Fleet model in simulated time on the agent's real link client (stripes, switch timers, collision re-dial, " +
    'discovery wiring) with a modelled kube-proxy (a random ready pod per new connection). Prints per run: ' +
    'seconds until pods added by a scale event carry 90% of the mean pod load, per-pod load max/mean and ' +
    'p99/mean (last half of the run), delivered share, new connections per second into the Service (mean and max ' +
    'over the last half; peak: after the first 10 s, scale events included).',
  SIMULATE_OPTIONS,
);

async function simulateMain(argv: readonly string[]): Promise<number> {
  const cmd = parseCommand(argv, SIMULATE_OPTIONS);
  if (cmd.help) {
    process.stdout.write(SIMULATE_HELP);
    return 0;
  }
  const o = cmd.options;
  const ns = (o['active-connections'] as string[]).map((x) => {
    if (!isIntIn(Number(x), 1, 64))
      throw new UsageError(`--active-connections: integers in [1, 64], got ${x}`);
    return Number(x);
  });
  const base = {
    agents: Number(o.agents),
    rates: parseRates(String(o.rates)),
    totalRate: Number(o['total-rate']),
    pods: Number(o.pods),
    podCapacity: Number(o['pod-capacity']),
    scale: parseScale(o.scale as string[]),
    switchIntervalS: Number(o['switch-interval']),
    switchJitter: 0.2,
    mode: o.mode as SimMode,
    durationS: Number(o.duration),
    seed: Number(o.seed),
    overloadDrain: o['overload-drain'] === true,
    saturatedSwitch: Number(o['saturated-switch']),
    batches:
      o['batch-traffic'] === undefined
        ? undefined
        : {
            blockRecords: Number(o['batch-traffic']),
            batchRecords: AGENT_DEFAULTS.batchRecords,
            lingerMs: AGENT_DEFAULTS.batchLingerMs,
          },
  };
  const runs: SimRunResult[] = [];
  for (const activeConnections of ns) {
    process.stderr.write(`simulating --active-connections ${activeConnections} ...\n`);
    runs.push(await simulate({ ...base, activeConnections }));
  }
  process.stdout.write(
    `model output: ${base.agents} agents (${String(o.rates)}), ${base.pods} pods of ${base.podCapacity} records/s, ` +
      `scale ${(o.scale as string[]).join(',')}, switch ${base.switchIntervalS} s, mode ${base.mode}, ${base.durationS} s simulated, seed ${base.seed}, drain on overload ${base.overloadDrain ? 'on' : 'off'}, traffic ${base.batches === undefined ? 'fluid' : `batches (${base.batches.blockRecords} records per block)`}\n`,
  );
  process.stdout.write(formatSimTable(runs));
  if (o.json !== undefined) {
    writeFileSync(
      String(o.json),
      `${JSON.stringify({ options: { ...base, activeConnections: ns }, runs }, null, 1)}\n`,
    );
    process.stdout.write(`json: ${String(o.json)}\n`);
  }
  return 0;
}

const REBALANCE_HELP = formatHelp(
  'snowtap loadtest rebalance [options]',
  'Start enrichers behind haproxy (standing in for a ClusterIP Service / kube-proxy), agents with synthetic ' +
    'producers, add an enricher, measure its share of records per second, remove one with SIGTERM, and check ' +
    'that nothing was lost or duplicated. Needs /usr/sbin/haproxy (apt-get install haproxy).',
  REBALANCE_OPTIONS,
);
const PRODUCER_HELP = formatHelp(
  'snowtap loadtest producer --socket PATH [options]',
  'Send synthetic dnstap (bidirectional Frame Streams) to an agent at a steady rate, then STOP; prints counts as JSON.',
  PRODUCER_OPTIONS,
);
const USAGE =
  'Usage: snowtap loadtest <scenario> [options]\n\nScenarios:\n' +
  '  rebalance  a new enricher gets its share although agents hold long-lived connections\n' +
  '  producer   synthetic dnstap sender for an agent socket\n' +
  "  simulate   fleet model in simulated time on the agent's real switching code\n" +
  '  autoscale  the KEDA loop end to end: CPU-limited pods, kube-proxy rules, Prometheus, the HPA stand-in\n';

function printRun(r: RebalanceResult): void {
  const out = process.stdout;
  out.write(`\n== ${r.title}: ${r.ok ? 'PASS' : 'FAIL'}\n`);
  out.write(formatShareTable(r.names, r.rows, r.events));
  for (const [name, c] of Object.entries(r.checks)) {
    out.write(`  ${c.ok ? 'ok  ' : c.advisory ? 'note' : 'FAIL'} ${name}: ${c.detail}\n`);
  }
}

async function rebalanceMain(argv: readonly string[]): Promise<number> {
  const cmd = parseCommand(argv, REBALANCE_OPTIONS);
  if (cmd.help) {
    process.stdout.write(REBALANCE_HELP);
    return 0;
  }
  const o = cmd.options;
  const binary = String(o.haproxy);
  if (!haproxyAvailable(binary))
    throw new UsageError(`--haproxy ${binary}: not installed (apt-get install haproxy)`);
  const base = {
    agents: Number(o.agents),
    enrichers: Number(o.enrichers),
    rate: Number(o.rate),
    warmup: Number(o.warmup),
    observe: Number(o.duration),
    afterRemove: Number(o['after-remove']),
    keep: Boolean(o.keep),
    haproxy: binary,
    progress: (line: string) => process.stderr.write(`${line}\n`),
  };
  const intervals = o.switch ? [Number(o['switch-interval']), ...(o.compare ? [0] : [])] : [0];
  const runs: RebalanceResult[] = [];
  for (const switchInterval of intervals) {
    const r = await runRebalance({ ...base, switchInterval });
    printRun(r);
    runs.push(r);
  }
  const html = writeReport(path.resolve(String(o['report-dir'])), runs);
  process.stdout.write(`\nreport: ${html}\n`);
  return runs.every((r) => r.ok) ? 0 : 1;
}

async function producerMain(argv: readonly string[]): Promise<number> {
  const cmd = parseCommand(argv, PRODUCER_OPTIONS);
  if (cmd.help) {
    process.stdout.write(PRODUCER_HELP);
    return 0;
  }
  const o = cmd.options;
  if (o.socket === undefined) throw new UsageError('--socket is required (the agent dnstap socket)');
  const stats = await runProducer({
    socket: String(o.socket),
    rate: Number(o.rate),
    seconds: Number(o.duration),
    seed: Number(o.seed),
    identity: String(o.identity),
    tickMs: Number(o['tick-ms']),
    framesPerWrite: Number(o['frames-per-write']),
  });
  process.stdout.write(`${JSON.stringify(stats)}\n`);
  return stats.error === null && stats.finished ? 0 : 1;
}

export async function loadtestMain(argv: readonly string[]): Promise<number> {
  const [scenario, ...rest] = argv;
  if (scenario === 'rebalance') return rebalanceMain(rest);
  if (scenario === 'producer') return producerMain(rest);
  if (scenario === 'simulate') return simulateMain(rest);
  if (scenario === 'autoscale') return autoscaleMain(rest);
  if (scenario === undefined || scenario === '--help' || scenario === '-h') {
    process.stdout.write(USAGE);
    return scenario === undefined ? 2 : 0;
  }
  throw new UsageError(`unknown loadtest scenario '${scenario}' (rebalance, producer, simulate, autoscale)`);
}
