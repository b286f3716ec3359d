// Figures, checks and the report of `snowtap loadtest autoscale`: scale-up time measured beside
// the bound computed from the rendered values, backlog back near zero within a stated bound,
// each new pod's share over [ready, ready + 2 x switch interval], drains, and the record_id
// audit; a printed summary table, report.json and a self-contained index.html (inline SVG).

import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { CsvAudit } from './csv-audit';
import type { HpaBehavior } from './hpa-model';
import { median } from './stats';

export interface PodRecord {
  name: string;
  createdAt: number;
  readyAt: number | null;
  terminatingAt: number | null;
  sigtermAt: number | null;
  /** --sigterm-lead: when the rules dropped the pod, after its SIGTERM. */
  rulesChangedAt?: number;
  exitedAt: number | null;
  exit: number | string | null;
}

export interface ReplicaSample {
  t: number;
  desired: number;
  /** Pods in the Service's endpoints. */
  ready: number;
  /** Enricher processes alive (ready, starting or draining). */
  running: number;
  /** Records/s the producers were asked to send. */
  offered: number;
}

export interface SyncRecord {
  t: number;
  statusReplicas: number;
  desired: number;
  reason: string;
  triggers: { name: string; value: number | null; proposal: number | null; error: string | null }[];
}

export interface Sample {
  t: number;
  /** records_received_total{input="link"} per live pod. */
  enricher: Record<string, number>;
  /** snowtap_enricher_overload per live pod (1 = overloaded). */
  overloaded?: Record<string, number>;
  /** Overload drains sent so far, all pods. */
  overloadDrains?: number;
  backlogBytes: number;
  dropped: number;
  resentBatches: number;
  drains: number;
  /** Agents' early switches on a full window (--saturated-switch) so far, all agents. */
  saturatedSwitches?: number;
  /** Agents' switches that reached a pod which had just joined (discovery) so far, all agents. */
  joinSwitches?: number;
  recordsIn: number;
  bytesIn: number;
}

export interface AutoscaleFacts {
  // biome-ignore lint/suspicious/noExplicitAny: the options as given, for the record
  options: Record<string, any>;
  chart: {
    set: readonly string[];
    scrapeIntervalSeconds: number;
    rateWindowSeconds: number;
    readinessPeriodSeconds: number;
    preStopSleepSeconds: number;
    terminationGracePeriodSeconds: number;
    minReplicas: number;
    maxReplicas: number;
    triggers: { name: string; query: string; target: number }[];
    behavior: HpaBehavior | null;
    /** The agents' --discovery target from the rendered sidecar (agent.discovery), or null. */
    agentDiscovery?: string | null;
    enricherAddress: string;
  };
  capacity: { recordsPerSecond: number; cpuUsed: number; offered: number; startupSeconds: number };
  low: number;
  peak: number;
  stepAt: number;
  stepDownAt: number;
  producersStoppedAt: number;
  events: { t: number; what: string }[];
  samples: Sample[];
  replicaSamples: ReplicaSample[];
  syncs: SyncRecord[];
  pods: PodRecord[];
  produced: number;
  framesBehind: number;
  producerErrors: string[];
  settled: boolean;
  agentExits: Record<string, number | string | null>;
  audit: CsvAudit;
  workDir: string;
}

export interface Check {
  ok: boolean;
  detail: string;
  /** Reported, not asserted (timing figures on a shared 2-core machine). */
  advisory?: boolean;
}

export interface NewPodShare {
  name: string;
  readyAt: number;
  share: number | null;
  fair: number;
  ratio: number | null;
  records: number;
}

export interface AutoscaleFigures {
  capacity: number;
  needed: number;
  /** ceil(peak / records-offered threshold), within min/max. */
  triggerAsks: number;
  maxReady: number;
  scaleUpSeconds: number | null;
  bound: { total: number; parts: Record<string, number> };
  backlogPeakBytes: number;
  backlogClearSeconds: number | null;
  backlogBoundSeconds: number | null;
  nearZeroBytes: number;
  newPods: NewPodShare[];
  medianShareRatio: number | null;
  /**
   * "New pods ready" -> "load spread": from the first sample with the needed pods ready to the
   * first from which the pods added since the step hold >= 70 % of their fair share over 3 s.
   */
  spreadSeconds: number | null;
  /** Overload drains the pods sent over the run, and pod-seconds spent overloaded after the step. */
  overloadDrains: number;
  overloadedPodSeconds: number;
  /** Agents' saturated switches over the run. */
  saturatedSwitches: number;
  /** Agents' switches toward pods that joined (agent.discovery) over the run. */
  joinSwitches: number;
  drains: { name: string; sigtermToExit: number | null; exit: number | string | null }[];
  lost: number;
  duplicates: number;
  resentBatches: number;
  dropped: number;
}

export interface AutoscaleResult {
  ok: boolean;
  figures: AutoscaleFigures;
  checks: Record<string, Check>;
}

const r1 = (x: number) => Math.round(x * 10) / 10;
const BATCH_RECORDS = 1000;

/** Records/s per pod between consecutive samples (a counter seen first counts from 0). */
export function podRates(samples: readonly Sample[]): { t: number; rates: Record<string, number> }[] {
  const out: { t: number; rates: Record<string, number> }[] = [];
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1]!;
    const b = samples[i]!;
    const dt = b.t - a.t;
    if (dt <= 0) continue;
    const rates: Record<string, number> = {};
    for (const [k, v] of Object.entries(b.enricher)) rates[k] = Math.max(0, v - (a.enricher[k] ?? 0)) / dt;
    out.push({ t: b.t, rates });
  }
  return out;
}

export function evaluateAutoscale(f: AutoscaleFacts): AutoscaleResult {
  const o = f.options;
  const C = f.capacity.recordsPerSecond;
  const offeredTrigger = f.chart.triggers.find((t) => t.name === 'records-offered') ?? f.chart.triggers[0]!;
  // The count the load needs: enough measured capacity for the peak. (The records-offered trigger
  // asks for ceil(peak / threshold), but the HPA's 10 % tolerance may hold one below that, with
  // enough capacity: both are reported.)
  const clamp = (n: number) => Math.min(f.chart.maxReplicas, Math.max(f.chart.minReplicas, n));
  const needed = clamp(Math.ceil(f.peak / C));
  const triggerAsks = clamp(Math.ceil(f.peak / offeredTrigger.target));
  const after = f.replicaSamples.filter((s) => s.t >= f.stepAt);
  const maxReady = Math.max(0, ...f.replicaSamples.map((s) => s.ready));
  const reached = after.find((s) => s.ready >= needed);
  const scaleUpSeconds = reached ? r1(reached.t - f.stepAt) : null;
  const up = f.chart.behavior?.scaleUp?.stabilizationWindowSeconds ?? 0;
  const parts: Record<string, number> = {
    'scrape interval': f.chart.scrapeIntervalSeconds,
    'rate() window': f.chart.rateWindowSeconds,
    'HPA sync period': Number(o.syncPeriod),
    'scale-up stabilisation': up,
    'pod readiness (probe period + measured start)': r1(
      f.chart.readinessPeriodSeconds + f.capacity.startupSeconds,
    ),
    'switch interval': Number(o.switchInterval),
  };
  const boundTotal = r1(Object.values(parts).reduce((a, b) => a + b, 0));

  // Backlog: near zero = a quarter of one batch's bytes per agent; bound = scale-up bound + the
  // peak backlog drained by the spare capacity of the needed pods + 2 switch intervals.
  const last = f.samples.at(-1);
  const bytesPerRecord = last && last.recordsIn > 0 ? last.bytesIn / last.recordsIn : 200;
  const nearZeroBytes = Number(o.agents) * 256 * 1024;
  const hold = f.samples.filter((s) => s.t >= f.stepAt && s.t <= f.stepDownAt);
  const backlogPeakBytes = Math.max(0, ...hold.map((s) => s.backlogBytes));
  let backlogClearSeconds: number | null = null;
  const peakAt = hold.find((s) => s.backlogBytes === backlogPeakBytes)?.t ?? f.stepAt;
  // Back near zero: the first moment after the peak from which it stays there for 5 s (or until
  // the load steps down); a one-sample bump later on is a switch's batch, not a backlog.
  for (const s of hold) {
    if (s.t < peakAt || s.backlogBytes > nearZeroBytes) continue;
    if (hold.filter((x) => x.t >= s.t && x.t <= s.t + 5).every((x) => x.backlogBytes <= nearZeroBytes)) {
      backlogClearSeconds = r1(s.t - f.stepAt);
      break;
    }
  }
  if (backlogPeakBytes <= nearZeroBytes) backlogClearSeconds = 0;
  const spare = needed * C - f.peak;
  const backlogBoundSeconds =
    spare > 0
      ? r1(boundTotal + backlogPeakBytes / bytesPerRecord / spare + 2 * Number(o.switchInterval))
      : null;

  // Each scale-up pod's share of records over [ready, ready + 2 x switch interval].
  const rates = podRates(f.samples);
  const win = 2 * Number(o.switchInterval);
  const newPods: NewPodShare[] = [];
  for (const p of f.pods) {
    if (p.readyAt === null || p.readyAt < f.stepAt) continue;
    const rows = rates.filter((r) => r.t > p.readyAt! && r.t <= p.readyAt! + win);
    let mine = 0;
    let all = 0;
    let pods = 0;
    for (const r of rows) {
      mine += r.rates[p.name] ?? 0;
      all += Object.values(r.rates).reduce((a, b) => a + b, 0);
      pods += f.replicaSamples.find((s) => s.t >= r.t)?.ready ?? 1;
    }
    const fair = rows.length > 0 ? rows.length / pods : 0;
    const share = all > 0 ? mine / all : null;
    newPods.push({
      name: p.name,
      readyAt: p.readyAt,
      share,
      fair,
      ratio: share === null || fair === 0 ? null : share / fair,
      records: Math.round(mine),
    });
  }
  const shareRatios = newPods.map((p) => p.ratio).filter((x): x is number => x !== null);
  const medianShareRatio = shareRatios.length === 0 ? null : median(shareRatios);
  const spreadSeconds = timeToSpread(f, rates, reached?.t ?? null);
  const overloadDrains = Math.max(0, ...f.samples.map((s) => s.overloadDrains ?? 0));
  const saturatedSwitches = Math.max(0, ...f.samples.map((s) => s.saturatedSwitches ?? 0));
  const joinSwitches = Math.max(0, ...f.samples.map((s) => s.joinSwitches ?? 0));
  const overloadedPodSeconds = f.samples
    .filter((s) => s.t >= f.stepAt && s.t <= f.stepDownAt)
    .reduce((n, s) => n + Object.values(s.overloaded ?? {}).reduce((a, b) => a + b, 0), 0);
  const drains = f.pods
    .filter((p) => p.terminatingAt !== null)
    .map((p) => ({
      name: p.name,
      sigtermToExit: p.exitedAt !== null && p.sigtermAt !== null ? r1(p.exitedAt - p.sigtermAt) : null,
      exit: p.exit,
    }));
  const unique = f.audit.rows - f.audit.duplicates;
  const lost = f.produced - unique;
  const resentBatches = last?.resentBatches ?? 0;
  const dropped = last?.dropped ?? 0;

  const checks: Record<string, Check> = {
    'scale-up happens': {
      ok: maxReady > f.chart.minReplicas,
      detail: `ready pods ${f.chart.minReplicas} -> max ${maxReady} (the load needs ${needed})`,
    },
    'new pods get traffic': {
      ok: newPods.length > 0 && newPods.every((p) => p.records > 0),
      detail:
        newPods.map((p) => `${p.name.slice(-5)}: ${p.records} records in its first ${win} s`).join('; ') ||
        'no pod was added',
    },
    'scale-up within the bound': {
      ok: scaleUpSeconds !== null && scaleUpSeconds <= boundTotal,
      detail: `${scaleUpSeconds ?? 'never'} s to ${needed} ready pods; bound ${boundTotal} s`,
      advisory: true,
    },
    'backlog back near zero within its bound': {
      ok:
        backlogClearSeconds !== null &&
        backlogBoundSeconds !== null &&
        backlogClearSeconds <= backlogBoundSeconds,
      detail: `peak ${(backlogPeakBytes / 2 ** 20).toFixed(1)} MiB; <= ${nearZeroBytes / 1024} KiB after ${backlogClearSeconds ?? 'never'} s; bound ${backlogBoundSeconds ?? 'n/a'} s`,
      advisory: true,
    },
    "new pods' share >= 70 % of fair (median)": {
      ok: medianShareRatio !== null && medianShareRatio >= 0.7,
      detail: `median ${medianShareRatio === null ? 'n/a' : `${Math.round(medianShareRatio * 100)} %`} of fair over ${newPods.length} pod(s)`,
      advisory: true,
    },
    '0 lost': {
      ok: lost === 0 && f.audit.badIds === 0 && f.audit.partialFiles === 0,
      detail: `produced ${f.produced}, unique record_ids in CSV ${unique} (lost ${lost}); bad ids ${f.audit.badIds}; partial files ${f.audit.partialFiles}`,
    },
    'duplicates only from re-sent batches': {
      ok: f.audit.duplicates <= resentBatches * BATCH_RECORDS,
      detail: `${f.audit.duplicates} duplicate rows; ${resentBatches} batches re-sent (<= ${BATCH_RECORDS} records each)`,
    },
    'no drops, producers clean, agents acknowledged': {
      ok: dropped === 0 && f.producerErrors.length === 0 && f.settled,
      detail: `agent drops ${dropped}; producer errors ${f.producerErrors.length}; settled ${f.settled}`,
    },
    'drains exit 0': {
      ok: drains.every((d) => d.exit === 0),
      detail:
        drains
          .map((d) => `${d.name.slice(-5)}: exit ${d.exit} ${d.sigtermToExit ?? '?'} s after SIGTERM`)
          .join('; ') || 'no scale-down happened',
      advisory: drains.length === 0,
    },
  };
  const ok = Object.values(checks).every((c) => c.ok || c.advisory);
  return {
    ok,
    checks,
    figures: {
      capacity: Math.round(C),
      needed,
      triggerAsks,
      maxReady,
      scaleUpSeconds,
      bound: { total: boundTotal, parts },
      backlogPeakBytes,
      backlogClearSeconds,
      backlogBoundSeconds,
      nearZeroBytes,
      newPods,
      medianShareRatio,
      spreadSeconds,
      overloadDrains,
      saturatedSwitches,
      joinSwitches,
      overloadedPodSeconds,
      drains,
      lost,
      duplicates: f.audit.duplicates,
      resentBatches,
      dropped,
    },
  };
}

/** Share over this many seconds of rate samples counts as "spread" at SPREAD_SHARE of fair. */
export const SPREAD_WINDOW_SECONDS = 3;
export const SPREAD_SHARE = 0.7;

/** See AutoscaleFigures.spreadSeconds; null when the needed pods were never ready or never spread. */
export function timeToSpread(
  f: AutoscaleFacts,
  rates: readonly { t: number; rates: Record<string, number> }[],
  readyAt: number | null,
): number | null {
  if (readyAt === null) return null;
  const added = f.pods.filter((p) => p.readyAt !== null && p.readyAt >= f.stepAt);
  for (const row of rates) {
    if (row.t < readyAt || row.t > f.stepDownAt) continue;
    const win = rates.filter((r) => r.t > row.t - SPREAD_WINDOW_SECONDS && r.t <= row.t);
    let mine = 0;
    let all = 0;
    let fair = 0;
    for (const r of win) {
      const ready = f.replicaSamples.find((s) => s.t >= r.t)?.ready ?? 1;
      const live = added.filter(
        (p) => p.readyAt! <= r.t && (p.terminatingAt === null || p.terminatingAt > r.t),
      );
      for (const p of live) mine += r.rates[p.name] ?? 0;
      all += Object.values(r.rates).reduce((a, b) => a + b, 0);
      fair += live.length / ready;
    }
    if (all > 0 && fair > 0 && mine / all >= (SPREAD_SHARE * fair) / win.length) return r1(row.t - readyAt);
  }
  return null;
}

/** The printed summary: figures and checks as aligned text. */
export function formatSummary(f: AutoscaleFacts, r: AutoscaleResult): string {
  const rows = summaryRows(f, r);
  const w = Math.max(...rows.map(([k]) => k.length));
  let out = rows.map(([k, v]) => `  ${k.padEnd(w)}  ${v}\n`).join('');
  out += '\n';
  for (const [name, c] of Object.entries(r.checks))
    out += `  ${c.ok ? 'ok  ' : c.advisory ? 'note' : 'FAIL'} ${name}: ${c.detail}\n`;
  return out;
}

/** The summary's label/value rows (indented labels are details of the row above). */
export function summaryRows(f: AutoscaleFacts, r: AutoscaleResult): [string, string][] {
  const g = r.figures;
  const o = f.options;
  const rows: [string, string][] = [
    ['proxy mode / scrape path', `${o.mode} / ${o.scrapePath}`],
    ['pod CPU limit', `${o.cpuLimit} core`],
    [
      "one pod's capacity (measured)",
      `${g.capacity} records/s (used ${f.capacity.cpuUsed.toFixed(2)} CPU-s/s at ${f.capacity.offered}/s offered)`,
    ],
    [
      'load: low -> peak',
      `${Math.round(f.low)} -> ${Math.round(f.peak)} records/s (${o.peakFactor} x capacity)`,
    ],
    [
      'records-offered threshold',
      `${f.chart.triggers.find((t) => t.name === 'records-offered')?.target ?? '?'} /pod`,
    ],
    [
      'replicas: min / needed (capacity) / trigger asks / max reached',
      `${f.chart.minReplicas} / ${g.needed} / ${g.triggerAsks} / ${g.maxReady}`,
    ],
    ['scale-up: measured | bound', `${g.scaleUpSeconds ?? 'never'} s | ${g.bound.total} s`],
    ...Object.entries(g.bound.parts).map(([k, v]): [string, string] => [`  bound: ${k}`, `${v} s`]),
    [
      'backlog peak; near zero after | bound',
      `${(g.backlogPeakBytes / 2 ** 20).toFixed(1)} MiB; ${g.backlogClearSeconds ?? 'never'} s | ${g.backlogBoundSeconds ?? 'n/a'} s`,
    ],
    ...g.newPods.map((p): [string, string] => [
      `  new pod ${p.name.slice(-5)} share`,
      `${p.share === null ? 'n/a' : `${(p.share * 100).toFixed(1)} %`} (fair ${(p.fair * 100).toFixed(1)} %, ${p.ratio === null ? 'n/a' : `${Math.round(p.ratio * 100)} %`} of fair) over [ready, ready + ${2 * Number(o.switchInterval)} s]`,
    ]),
    [
      'median new-pod share / fair',
      g.medianShareRatio === null ? 'n/a' : `${Math.round(g.medianShareRatio * 100)} %`,
    ],
    [
      'needed pods ready -> load spread (added pods >= 70 % of fair over 3 s)',
      `${g.spreadSeconds ?? 'never'} s`,
    ],
    [
      `drain on overload (${o.overloadDrain === false ? 'off' : 'on'}): drains; pod-s overloaded in the hold`,
      `${g.overloadDrains}; ${g.overloadedPodSeconds}`,
    ],
    [
      `agents' saturated switches (--saturated-switch ${o.saturatedSwitch ?? 'default'})`,
      String(g.saturatedSwitches),
    ],
    [
      `agents' switches toward pods that joined (agent.discovery ${f.chart.agentDiscovery ? 'on' : 'off'})`,
      String(g.joinSwitches),
    ],
    ...(o.sigtermLead === null || o.sigtermLead === undefined
      ? []
      : ([['scale-down order', `SIGTERM ${o.sigtermLead} s before the rules change`]] as [string, string][])),
    ...g.drains.map((d): [string, string] => [
      `  drain ${d.name.slice(-5)}`,
      `exit ${d.exit}, ${d.sigtermToExit ?? '?'} s after SIGTERM`,
    ]),
    [
      'records produced / unique in CSV / lost',
      `${f.produced} / ${f.audit.rows - f.audit.duplicates} / ${g.lost}`,
    ],
    ['duplicates / re-sent batches / drops', `${g.duplicates} / ${g.resentBatches} / ${g.dropped}`],
  ];
  return rows;
}

// ---- HTML ------------------------------------------------------------------------------------

const COLORS = [
  '#1f77b4',
  '#ff7f0e',
  '#2ca02c',
  '#d62728',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#17becf',
  '#bcbd22',
  '#7f7f7f',
];

interface Series {
  name: string;
  color: string;
  points: [number, number][];
  step?: boolean;
  dashed?: boolean;
  dots?: boolean;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function fmt(v: number): string {
  if (v >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (v >= 1e4) return `${+(v / 1e3).toFixed(0)}k`;
  if (v >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  return `${+v.toFixed(2)}`;
}

/** A line chart with axes, a legend in HTML above it, and numbered event markers. */
function chart(
  title: string,
  yLabel: string,
  series: Series[],
  tMax: number,
  markers: { t: number; n: string }[],
): string {
  const W = 1300;
  const H = 260;
  const L = 70;
  const R = 20;
  const T = 22;
  const B = 36;
  const yMax = niceMax(Math.max(0, ...series.flatMap((s) => s.points.map((p) => p[1]))));
  const x = (t: number) => L + (t / tMax) * (W - L - R);
  const y = (v: number) => T + (1 - v / yMax) * (H - T - B);
  let svg = `<svg viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="${esc(title)}">`;
  for (let i = 0; i <= 4; i++) {
    const v = (yMax * i) / 4;
    svg += `<line x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}" stroke="#e5e5e5"/>`;
    svg += `<text x="${L - 6}" y="${y(v) + 4}" text-anchor="end" font-size="12">${fmt(v)}</text>`;
  }
  const step = niceMax(tMax / 10);
  for (let t = 0; t <= tMax; t += step)
    svg += `<text x="${x(t)}" y="${H - B + 16}" text-anchor="middle" font-size="12">${Math.round(t)}</text>`;
  svg += `<text x="${(L + W - R) / 2}" y="${H - 4}" text-anchor="middle" font-size="12">seconds since the first replica was created</text>`;
  svg += `<text x="14" y="${(T + H - B) / 2}" font-size="12" text-anchor="middle" transform="rotate(-90 14 ${(T + H - B) / 2})">${esc(yLabel)}</text>`;
  for (const m of markers) {
    svg += `<line x1="${x(m.t)}" x2="${x(m.t)}" y1="${T}" y2="${H - B}" stroke="#999" stroke-dasharray="3 3"/>`;
    svg += `<text x="${x(m.t) + 3}" y="${T - 6}" font-size="11" fill="#555">${m.n}</text>`;
  }
  for (const s of series) {
    if (s.points.length === 0) continue;
    let d = '';
    s.points.forEach(([t, v], i) => {
      if (i === 0) d += `M${x(t).toFixed(1)},${y(v).toFixed(1)}`;
      else {
        if (s.step) d += `H${x(t).toFixed(1)}`;
        d += `L${x(t).toFixed(1)},${y(v).toFixed(1)}`;
      }
    });
    if (!s.dots)
      svg += `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`;
    else
      for (const [t, v] of s.points) svg += `<circle cx="${x(t)}" cy="${y(v)}" r="3.5" fill="${s.color}"/>`;
  }
  svg += `<rect x="${L}" y="${T}" width="${W - L - R}" height="${H - T - B}" fill="none" stroke="#888"/></svg>`;
  const legend = series
    .map((s) => `<span class="key"><i style="background:${s.color}"></i>${esc(s.name)}</span>`)
    .join('');
  return `<section><h2>${esc(title)}</h2><div class="legend">${legend}</div>${svg}</section>`;
}

/** Centred moving average over `k` points. */
function smooth(points: [number, number][], k: number): [number, number][] {
  const h = k >> 1;
  return points.map(([t], i) => {
    const w = points.slice(Math.max(0, i - h), i + h + 1);
    return [t, w.reduce((a, p) => a + p[1], 0) / w.length];
  });
}

export function renderAutoscaleHtml(f: AutoscaleFacts, r: AutoscaleResult): string {
  const tMax = Math.max(10, ...f.samples.map((s) => s.t));
  // Events worth a marker: load changes, scale decisions, readiness, terminations.
  const marked = f.events.filter((e) => /load|scale|ready|terminating|exited|stopped/.test(e.what));
  // Events closer than 1.5 % of the time axis share one marker ("6-7"), so labels never overlap.
  const markers: { t: number; n: string }[] = [];
  let group: number[] = [];
  const flush = () => {
    if (group.length === 0) return;
    const first = group[0]!;
    const lastN = group.at(-1)!;
    markers.push({
      t: marked[first]!.t,
      n: group.length === 1 ? `${first + 1}` : `${first + 1}-${lastN + 1}`,
    });
    group = [];
  };
  marked.forEach((e, i) => {
    if (group.length > 0 && e.t - marked[group[0]!]!.t > 0.015 * tMax) flush();
    group.push(i);
  });
  flush();
  const replicas = chart(
    'Replicas: desired (HPA stand-in) vs ready (in the endpoints); each trigger’s proposal at every sync',
    'pods',
    [
      {
        name: 'desired',
        color: COLORS[3]!,
        points: f.replicaSamples.map((s) => [s.t, s.desired]),
        step: true,
      },
      {
        name: 'ready (endpoints)',
        color: COLORS[0]!,
        points: f.replicaSamples.map((s) => [s.t, s.ready]),
        step: true,
      },
      {
        name: 'running processes',
        color: COLORS[7]!,
        points: f.replicaSamples.map((s) => [s.t, s.running]),
        step: true,
        dashed: true,
      },
      ...f.chart.triggers.map((tr, i) => ({
        name: `proposal: ${tr.name}`,
        color: COLORS[4 + i]!,
        dots: true,
        points: f.syncs.flatMap((s): [number, number][] => {
          const p = s.triggers.find((x) => x.name === tr.name)?.proposal;
          return p === null || p === undefined ? [] : [[s.t, p]];
        }),
      })),
    ],
    tMax,
    markers,
  );
  const triggers = f.chart.triggers
    .map((tr, i) =>
      chart(
        `Trigger ${tr.name}: value KEDA reads vs threshold x replicas (threshold ${fmt(tr.target)} per pod)`,
        tr.name,
        [
          {
            name: 'value at each sync (lines join the syncs)',
            color: COLORS[4 + i]!,
            points: f.syncs.flatMap((s): [number, number][] => {
              const v = s.triggers.find((x) => x.name === tr.name)?.value;
              return v === null || v === undefined ? [] : [[s.t, v]];
            }),
          },
          {
            name: 'threshold x replicas at that sync',
            color: '#999',
            dashed: true,
            step: true,
            points: f.syncs.map((s) => [s.t, tr.target * s.statusReplicas]),
          },
        ],
        tMax,
        markers,
      ),
    )
    .join('');
  const rates = podRates(f.samples);
  const names = f.pods.map((p) => p.name);
  const perPod = chart(
    'Records/s per pod (5 s moving average) and offered load',
    'records/s',
    [
      ...names.map((n, i) => ({
        name: n.replace(/^snowtap-enricher-[a-z0-9]+-/, 'pod '),
        color: COLORS[i % COLORS.length]!,
        points: smooth(
          rates.filter((x) => x.rates[n] !== undefined).map((x): [number, number] => [x.t, x.rates[n]!]),
          5,
        ),
      })),
      {
        name: 'offered (all agents)',
        color: '#000',
        dashed: true,
        step: true,
        points: f.replicaSamples.map((s) => [s.t, s.offered]),
      },
      {
        name: "one pod's capacity",
        color: '#bbb',
        dashed: true,
        points: [
          [0, f.capacity.recordsPerSecond],
          [tMax, f.capacity.recordsPerSecond],
        ],
      },
    ],
    tMax,
    markers,
  );
  const backlog = chart(
    'Agent backlog (all agents, MiB)',
    'MiB',
    [{ name: 'backlog', color: COLORS[1]!, points: f.samples.map((s) => [s.t, s.backlogBytes / 2 ** 20]) }],
    tMax,
    markers,
  );
  const drops = chart(
    'Drops, drains and re-sent batches (cumulative, all agents)',
    'count',
    [
      { name: 'records dropped', color: COLORS[3]!, points: f.samples.map((s) => [s.t, s.dropped]) },
      { name: 'Drain requests received', color: COLORS[2]!, points: f.samples.map((s) => [s.t, s.drains]) },
      { name: 'batches re-sent', color: COLORS[4]!, points: f.samples.map((s) => [s.t, s.resentBatches]) },
    ],
    tMax,
    markers,
  );
  const eventRows = marked
    .map((e, i) => `<tr><td>${i + 1}</td><td>${e.t.toFixed(1)}</td><td>${esc(e.what)}</td></tr>`)
    .join('');
  const checkRows = Object.entries(r.checks)
    .map(
      ([k, c]) =>
        `<tr class="${c.ok ? 'ok' : c.advisory ? 'note' : 'fail'}"><td>${c.ok ? 'ok' : c.advisory ? 'note' : 'FAIL'}</td><td>${esc(k)}</td><td>${esc(c.detail)}</td></tr>`,
    )
    .join('');
  const summary = summaryRows(f, r)
    .map(
      ([k, v]) =>
        `<tr><td${k.startsWith('  ') ? ' class="sub"' : ''}>${esc(k.trim())}</td><td>${esc(v)}</td></tr>`,
    )
    .join('');
  const queries = f.chart.triggers
    .map(
      (t) => `<tr><td>${esc(t.name)}</td><td>${fmt(t.target)}</td><td><code>${esc(t.query)}</code></td></tr>`,
    )
    .join('');
  return `<!doctype html><html><head><meta charset="utf-8"><title>snowtap loadtest autoscale</title><style>
body{font-family:system-ui,sans-serif;margin:24px;max-width:1340px;color:#222}
h1{font-size:22px}h2{font-size:15px;margin:18px 0 4px}
.legend{font-size:13px;margin:2px 0 4px}.key{margin-right:16px;white-space:nowrap}
.key i{display:inline-block;width:14px;height:4px;margin-right:5px;vertical-align:middle}
table{border-collapse:collapse;font-size:13px;margin:6px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
tr.ok td:first-child{color:#137333}tr.fail td:first-child{color:#c5221f;font-weight:bold}tr.note td:first-child{color:#b06000}
pre{font-size:13px;background:#f7f7f7;padding:8px;overflow-x:auto}code{font-size:12px;word-break:break-all}
td.sub{padding-left:22px;color:#555}ul.set{margin:4px 0 8px;columns:2;font-size:13px}
.cols{display:flex;gap:24px;flex-wrap:wrap}.cols>div{flex:1;min-width:420px}
</style></head><body>
<h1>snowtap loadtest autoscale: ${r.ok ? 'PASS' : 'FAIL'} (${esc(String(f.options.mode))}, ${esc(String(f.options.scrapePath))})</h1>
<p>Real: CPU-limited enricher processes, kube-proxy's ${esc(String(f.options.mode))} data plane in a network namespace, Debian's Prometheus, ${f.options.agents} snowtap agents. Stand-in: the HPA + KEDA metrics adapter (hpa-model.ts), fed the ScaledObject as <code>helm template</code> renders it${f.chart.set.length > 0 ? ` with these values set:</p><ul class="set">${f.chart.set.map((x) => `<li><code>${esc(x)}</code></li>`).join('')}</ul>` : ' (default values).</p>'}
<div class="cols"><div><h2>Summary</h2><table>${summary}</table></div>
<div><h2>Checks</h2><table>${checkRows}</table><h2>Events (numbered markers on the charts)</h2><table><tr><th>#</th><th>t (s)</th><th>event</th></tr>${eventRows}</table></div></div>
${replicas}${triggers}${perPod}${backlog}${drops}
<h2>Triggers as rendered</h2><table><tr><th>name</th><th>threshold</th><th>query</th></tr>${queries}</table>
<p>Raw data: <a href="report.json">report.json</a></p>
</body></html>`;
}

export function writeAutoscaleReport(dir: string, f: AutoscaleFacts, r: AutoscaleResult): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'report.json'), `${JSON.stringify({ result: r, facts: f }, null, 1)}\n`);
  const html = path.join(dir, 'index.html');
  writeFileSync(html, renderAutoscaleHtml(f, r));
  return html;
}
