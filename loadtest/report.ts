// Analysis and output of the rebalance load test: per-second records/s and share of each
// enricher from sampled counters, the "new enricher gets its share" figures, a text table, and
// a report directory with report.json and a self-contained index.html (inline SVG, no assets).

import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** One scrape of every enricher's records-received counter; null = not running (yet/any more). */
export interface CounterSample {
  /** Seconds since the producers started. */
  t: number;
  counts: (number | null)[];
}

export interface ShareRow {
  t: number;
  /** Records/s per enricher over the second before t. */
  rates: number[];
  total: number;
  /** rates / total (0 when nothing arrived). */
  shares: number[];
}

export interface TimelineEvent {
  t: number;
  what: string;
}

export interface NewcomerFigures {
  fairShare: number;
  /** 70% of the fair share. */
  threshold: number;
  /** Trailing window over which the share is measured for "reached" (seconds). */
  windowS: number;
  /** Seconds from being added until its trailing-window share first reached the threshold. */
  timeToThreshold: number | null;
  /** Record-weighted share from reaching the threshold to the end of the observation. */
  shareAfterReach: number | null;
  /** Record-weighted share over the whole observation after being added. */
  shareObserved: number;
}

/** Per-second rates from consecutive samples (a counter that just appeared starts at 0). */
export function shareRows(samples: readonly CounterSample[]): ShareRow[] {
  const rows: ShareRow[] = [];
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1]!;
    const b = samples[i]!;
    const dt = b.t - a.t;
    if (dt <= 0) continue;
    const rates = b.counts.map((c, k) => (c === null ? 0 : Math.max(0, c - (a.counts[k] ?? 0)) / dt));
    const total = rates.reduce((x, y) => x + y, 0);
    rows.push({ t: b.t, rates, total, shares: rates.map((r) => (total > 0 ? r / total : 0)) });
  }
  return rows;
}

/** Record-weighted share of enricher `k` over rows with from < t <= to. */
export function windowShare(rows: readonly ShareRow[], k: number, from: number, to: number): number | null {
  let mine = 0;
  let all = 0;
  for (const r of rows) {
    if (r.t <= from || r.t > to) continue;
    mine += r.rates[k] ?? 0;
    all += r.total;
  }
  return all > 0 ? mine / all : null;
}

/** How fast and how well enricher `k`, added at `addedAt`, got its share until `endAt`. */
export function analyseNewcomer(
  rows: readonly ShareRow[],
  k: number,
  addedAt: number,
  endAt: number,
  enrichers: number,
  windowS: number,
): NewcomerFigures {
  const fairShare = 1 / enrichers;
  const threshold = 0.7 * fairShare;
  let reachedAt: number | null = null;
  for (const r of rows) {
    if (r.t <= addedAt || r.t > endAt) continue;
    const s = windowShare(rows, k, Math.max(addedAt, r.t - windowS), r.t);
    if (s !== null && s >= threshold) {
      reachedAt = r.t;
      break;
    }
  }
  return {
    fairShare,
    threshold,
    windowS,
    timeToThreshold: reachedAt === null ? null : round(reachedAt - addedAt, 2),
    shareAfterReach: reachedAt === null ? null : round(windowShare(rows, k, reachedAt, endAt) ?? 0, 4),
    shareObserved: round(windowShare(rows, k, addedAt, endAt) ?? 0, 4),
  };
}

export function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** The share table: one line per second, events on the line where they happened. */
export function formatShareTable(
  names: readonly string[],
  rows: readonly ShareRow[],
  events: readonly TimelineEvent[],
): string {
  const head = ['t/s', ...names.map((n) => `${n} share`)].map((h) => h.padStart(10)).join('');
  const lines = [`${head}${'total rec/s'.padStart(12)}  event`];
  let e = 0;
  for (const r of rows) {
    const notes: string[] = [];
    while (e < events.length && events[e]!.t <= r.t) notes.push(events[e++]!.what);
    const cells = [
      r.t.toFixed(1),
      ...r.shares.map((s, k) => (r.rates[k]! > 0 ? (s * 100).toFixed(1) + '%' : '-')),
    ];
    lines.push(
      cells.map((c) => c.padStart(10)).join('') +
        String(Math.round(r.total)).padStart(12) +
        '  ' +
        notes.join('; '),
    );
  }
  return lines.join('\n') + '\n';
}

export interface RunReport {
  title: string;
  names: string[];
  rows: ShareRow[];
  events: TimelineEvent[];
  newcomer: NewcomerFigures;
  ok: boolean;
  /** Everything else worth keeping (options, audit, checks): written to JSON as is. */
  details: Record<string, unknown>;
}

const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f'];

function esc(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

/** Share of each enricher over time, fair share and threshold lines, event markers. */
export function shareChartSvg(run: RunReport, width = 900, height = 320): string {
  const pad = { l: 50, r: 20, t: 20, b: 40 };
  const tMax = Math.max(1, ...run.rows.map((r) => r.t));
  const x = (t: number) => pad.l + (t / tMax) * (width - pad.l - pad.r);
  const y = (s: number) => pad.t + (1 - s) * (height - pad.t - pad.b);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
  ];
  for (const s of [0, 0.25, 0.5, 0.75, 1]) {
    parts.push(`<line x1="${pad.l}" x2="${width - pad.r}" y1="${y(s)}" y2="${y(s)}" stroke="#ddd"/>`);
    parts.push(`<text x="${pad.l - 6}" y="${y(s) + 4}" text-anchor="end">${s * 100}%</text>`);
  }
  for (let t = 0; t <= tMax; t += Math.max(1, Math.round(tMax / 12)))
    parts.push(`<text x="${x(t)}" y="${height - pad.b + 16}" text-anchor="middle">${t}s</text>`);
  const f = run.newcomer;
  for (const [v, label] of [
    [f.fairShare, 'fair share'],
    [f.threshold, '70% of fair'],
  ] as const)
    parts.push(
      `<line x1="${pad.l}" x2="${width - pad.r}" y1="${y(v)}" y2="${y(v)}" stroke="#888" stroke-dasharray="4 3"/>`,
      `<text x="${width - pad.r}" y="${y(v) - 3}" text-anchor="end" fill="#666">${label}</text>`,
    );
  run.events.forEach((e, i) => {
    parts.push(`<line x1="${x(e.t)}" x2="${x(e.t)}" y1="${pad.t}" y2="${height - pad.b}" stroke="#aaa"/>`);
    parts.push(`<text x="${x(e.t) + 3}" y="${pad.t + 12 + (i % 3) * 12}" fill="#444">${esc(e.what)}</text>`);
  });
  run.names.forEach((name, k) => {
    const pts = run.rows
      .filter((r) => r.total > 0)
      .map((r) => `${x(r.t).toFixed(1)},${y(r.shares[k]!).toFixed(1)}`);
    const c = COLORS[k % COLORS.length];
    parts.push(`<polyline fill="none" stroke="${c}" stroke-width="2" points="${pts.join(' ')}"/>`);
    parts.push(`<text x="${pad.l + 10 + k * 70}" y="${height - 8}" fill="${c}">■ ${esc(name)}</text>`);
  });
  parts.push(
    `<text x="${width - pad.r}" y="${height - 8}" text-anchor="end">time since producers started</text></svg>`,
  );
  return parts.join('\n');
}

export function renderHtml(runs: readonly RunReport[]): string {
  const body = runs.map((r) => {
    const f = r.newcomer;
    const fig = `time to 70% of fair share: ${f.timeToThreshold === null ? 'never' : `${f.timeToThreshold} s`}; share after that: ${f.shareAfterReach === null ? '-' : `${(f.shareAfterReach * 100).toFixed(1)}%`}; share over the observation: ${(f.shareObserved * 100).toFixed(1)}% (fair ${(f.fairShare * 100).toFixed(1)}%)`;
    return `<h2>${esc(r.title)} — ${r.ok ? 'PASS' : 'FAIL'}</h2>\n<p>${esc(fig)}</p>\n${shareChartSvg(r)}\n<pre>${esc(formatShareTable(r.names, r.rows, r.events))}</pre>\n<pre>${esc(JSON.stringify(r.details, null, 2))}</pre>`;
  });
  return `<!doctype html><html><head><meta charset="utf-8"><title>snowtap rebalance load test</title><style>body{font-family:sans-serif;margin:2em}pre{font-size:12px;background:#f6f6f6;padding:8px}</style></head><body><h1>snowtap rebalance load test</h1>\n${body.join('\n')}\n</body></html>\n`;
}

/** Writes report.json and index.html into `dir` (created); returns the HTML path. */
export function writeReport(dir: string, runs: readonly RunReport[]): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'report.json'), JSON.stringify(runs, null, 2) + '\n');
  const html = path.join(dir, 'index.html');
  writeFileSync(html, renderHtml(runs));
  return html;
}
