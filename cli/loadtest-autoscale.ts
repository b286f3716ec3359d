// `snowtap loadtest autoscale`: options, the run and its printed summary (the scenario itself is
// loadtest/autoscale.ts). --short is the CI form; without it the chart's own timing applies.

import path from 'node:path';
import { AGENT_LIMITS } from '../agent/options';
import type { ScrapePath } from '../loadtest/autoscale';
import {
  AUTOSCALE_SHORT,
  type AutoscaleOptions,
  AUTOSCALE_DEFAULTS as D,
  runAutoscale,
  SCRAPE_PATHS,
} from '../loadtest/autoscale';
import { evaluateAutoscale, formatSummary, writeAutoscaleReport } from '../loadtest/autoscale-report';
import { PROXY_MODES, type ProxyMode } from '../loadtest/kube-proxy';
import { formatHelp, type OptionSpec, parseCommand } from './options';

const num = (name: string, def: number | undefined, help: string, min = 0, arg = 'SECONDS'): OptionSpec => ({
  name,
  kind: 'number',
  default: def,
  min,
  arg,
  help,
});

export const AUTOSCALE_OPTIONS: readonly OptionSpec[] = [
  {
    name: 'proxy-mode',
    kind: 'enum',
    values: PROXY_MODES,
    default: 'iptables',
    help: "kube-proxy's data plane",
  },
  {
    name: 'scrape-path',
    kind: 'enum',
    values: SCRAPE_PATHS,
    default: 'servicemonitor',
    help: 'target labels Prometheus attaches (ServiceMonitor, PodMonitor, prometheus.io annotations)',
  },
  {
    name: 'short',
    kind: 'bool',
    default: false,
    help: `CI form: helm --set ${AUTOSCALE_SHORT.set.join(' ')}, short phases`,
  },
  {
    name: 'agents',
    kind: 'int',
    default: D.agents,
    min: 1,
    max: 200,
    arg: 'N',
    help: 'agent processes, one producer each',
  },
  num('cpu-limit', D.cpuLimit, "enricher pods' CPU limit", 0.01, 'CORES'),
  num(
    'switch-interval',
    undefined,
    `agents' --switch-interval (default ${D.switchInterval}; --short ${AUTOSCALE_SHORT.switchInterval})`,
    0.1,
  ),
  num('low', D.lowFactor, "low load, in multiples of one pod's measured capacity", 0.01, 'FACTOR'),
  num('peak', D.peakFactor, "peak load, in multiples of one pod's measured capacity", 0.01, 'FACTOR'),
  num(
    'headroom',
    D.headroom,
    'records-offered threshold = this x measured capacity (unless --set gives it)',
    0.01,
    'FACTOR',
  ),
  num('low-seconds', undefined, `low phase before the step (default ${D.lowSeconds})`),
  num('hold-seconds', undefined, `peak phase (default ${D.holdSeconds})`),
  num('tail-seconds', undefined, `low phase after the peak, for the scale-down (default ${D.tailSeconds})`),
  num('calibrate-seconds', undefined, `capacity measurement (default ${D.calibrateSeconds})`, 2),
  num('calibrate-rate', D.calibrateRate, 'records/s offered to the pod being measured', 1, 'RECORDS_PER_S'),
  num('scrape-interval', undefined, "override the chart's scrape interval", 1),
  num('sync-period', D.syncPeriod, 'HPA sync period', 1),
  {
    name: 'overload-drain',
    kind: 'bool',
    default: D.overloadDrain,
    help: "enricher pods' --overload-drain (--no-overload-drain: off, for an on/off comparison)",
  },
  {
    name: 'saturated-switch',
    kind: 'number',
    min: AGENT_LIMITS.saturatedSwitch.min,
    max: AGENT_LIMITS.saturatedSwitch.max,
    arg: 'FRACTION',
    help: "agents' --saturated-switch (default: the agent's own, 1 = off; e.g. 0.5 for an on/off comparison)",
  },
  num(
    'sigterm-lead',
    undefined,
    "scale-down: SIGTERM this many seconds BEFORE the rules drop the pod (default: the chart's order, rules first, SIGTERM after preStop)",
  ),
  num('settle-timeout', D.settleTimeout, 'wait this long for agents to be fully acknowledged at the end', 1),
  {
    name: 'set',
    kind: 'list',
    default: [],
    arg: 'K=V[,K=V]',
    help: 'extra helm --set values for the render',
  },
  {
    name: 'report-dir',
    kind: 'string',
    default: './loadtest-report/autoscale',
    arg: 'DIR',
    help: 'report.json and index.html',
  },
  { name: 'keep', kind: 'bool', default: false, help: 'keep the work dir (logs, CSV)' },
  {
    name: 'repeat',
    kind: 'int',
    default: 1,
    min: 1,
    max: 50,
    arg: 'N',
    help: "run N times (reports in DIR/run-K) and print the median over runs of the new pods' share",
  },
];

const HELP = formatHelp(
  'snowtap loadtest autoscale [options]',
  "The KEDA loop end to end: CPU-limited enricher pods behind kube-proxy's data plane in a network namespace, " +
    "Debian's Prometheus, the HPA/KEDA stand-in fed the chart's rendered ScaledObject, >= 8 agents with a " +
    'low -> 2.5x -> low load. Needs root, iproute2, iptables/nftables/haproxy, prometheus, helm (HELM_BIN).',
  AUTOSCALE_OPTIONS,
);

export async function autoscaleMain(argv: readonly string[]): Promise<number> {
  const cmd = parseCommand(argv, AUTOSCALE_OPTIONS);
  if (cmd.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const o = cmd.options;
  const short = Boolean(o.short);
  const pick = (flag: string, def: number, shortDef: number) =>
    o[flag] !== undefined ? Number(o[flag]) : short ? shortDef : def;
  const opts: AutoscaleOptions = {
    mode: o['proxy-mode'] as ProxyMode,
    scrapePath: o['scrape-path'] as ScrapePath,
    agents: Number(o.agents),
    cpuLimit: Number(o['cpu-limit']),
    switchInterval: pick('switch-interval', D.switchInterval, AUTOSCALE_SHORT.switchInterval),
    lowFactor: Number(o.low),
    peakFactor: Number(o.peak),
    headroom: Number(o.headroom),
    lowSeconds: pick('low-seconds', D.lowSeconds, AUTOSCALE_SHORT.lowSeconds),
    holdSeconds: pick('hold-seconds', D.holdSeconds, AUTOSCALE_SHORT.holdSeconds),
    tailSeconds: pick('tail-seconds', D.tailSeconds, AUTOSCALE_SHORT.tailSeconds),
    calibrateSeconds: pick('calibrate-seconds', D.calibrateSeconds, AUTOSCALE_SHORT.calibrateSeconds),
    calibrateRate: Number(o['calibrate-rate']),
    set: [...(short ? AUTOSCALE_SHORT.set : []), ...(o.set as string[])],
    scrapeInterval: o['scrape-interval'] === undefined ? undefined : Number(o['scrape-interval']),
    syncPeriod: Number(o['sync-period']),
    settleTimeout: Number(o['settle-timeout']),
    overloadDrain: Boolean(o['overload-drain']),
    saturatedSwitch: o['saturated-switch'] === undefined ? undefined : Number(o['saturated-switch']),
    sigtermLead: o['sigterm-lead'] === undefined ? null : Number(o['sigterm-lead']),
    keep: Boolean(o.keep),
    progress: (line) => process.stderr.write(`${line}\n`),
  };
  const n = Number(o.repeat);
  const runs: {
    ok: boolean;
    scaleUp: number | null;
    bound: number;
    share: number | null;
    spread: number | null;
    lost: number;
  }[] = [];
  for (let k = 1; k <= n; k++) {
    const facts = await runAutoscale(opts);
    const result = evaluateAutoscale(facts);
    const g = result.figures;
    runs.push({
      ok: result.ok,
      scaleUp: g.scaleUpSeconds,
      bound: g.bound.total,
      share: g.medianShareRatio,
      spread: g.spreadSeconds,
      lost: g.lost,
    });
    const tag = n > 1 ? ` (run ${k}/${n})` : '';
    process.stdout.write(
      `\n== autoscale ${opts.mode} / ${opts.scrapePath}${tag}: ${result.ok ? 'PASS' : 'FAIL'}\n`,
    );
    process.stdout.write(formatSummary(facts, result));
    const dir = path.resolve(String(o['report-dir']), n > 1 ? `run-${k}` : '');
    process.stdout.write(`\nreport: ${writeAutoscaleReport(dir, facts, result)}\n`);
  }
  if (n > 1) {
    process.stdout.write(
      `\n== ${n} runs (${opts.mode} / ${opts.scrapePath}, drain on overload ${opts.overloadDrain ? 'on' : 'off'})\n  run  scale-up  bound   new-pod share/fair  lost  ready->spread\n`,
    );
    runs.forEach((r, i) => {
      process.stdout.write(
        `  ${String(i + 1).padStart(3)}  ${String(r.scaleUp ?? 'never').padStart(6)} s  ${String(r.bound).padStart(4)} s  ${r.share === null ? '     n/a' : `${Math.round(r.share * 100)} %`.padStart(8)}            ${r.lost}  ${r.spread ?? 'never'} s\n`,
      );
    });
    const shares = runs
      .map((r) => r.share)
      .filter((x): x is number => x !== null)
      .sort((a, b) => a - b);
    const med =
      shares.length === 0
        ? null
        : shares.length % 2
          ? shares[shares.length >> 1]!
          : (shares[shares.length / 2 - 1]! + shares[shares.length / 2]!) / 2;
    process.stdout.write(
      `  median over runs of the new pods' share: ${med === null ? 'n/a' : `${Math.round(med * 100)} % of fair`} (>= 70 % wanted)\n`,
    );
  }
  return runs.every((r) => r.ok) ? 0 : 1;
}
