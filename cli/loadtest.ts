// `snowtap loadtest <scenario>`: load generation and measurement with real processes.
//
//   snowtap loadtest rebalance [options]   new enrichers get their share behind a Service
//   snowtap loadtest producer --socket PATH --rate N --duration S   synthetic dnstap sender
//
// Exit codes: 0 every criterion met, 1 a criterion failed (or a run broke), 2 bad usage.

import path from 'node:path';
import { HAPROXY_BINARY, haproxyAvailable } from '../loadtest/haproxy';
import { runProducer } from '../loadtest/producer';
import { REBALANCE_DEFAULTS, type RebalanceResult, runRebalance } from '../loadtest/rebalance';
import { formatShareTable, writeReport } from '../loadtest/report';
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
  });
  process.stdout.write(`${JSON.stringify(stats)}\n`);
  return stats.error === null && stats.finished ? 0 : 1;
}

export async function loadtestMain(argv: readonly string[]): Promise<number> {
  const [scenario, ...rest] = argv;
  if (scenario === 'rebalance') return rebalanceMain(rest);
  if (scenario === 'producer') return producerMain(rest);
  if (scenario === 'autoscale') return autoscaleMain(rest);
  if (scenario === undefined || scenario === '--help' || scenario === '-h') {
    process.stdout.write(USAGE);
    return scenario === undefined ? 2 : 0;
  }
  throw new UsageError(`unknown loadtest scenario '${scenario}' (rebalance, producer, autoscale)`);
}
