// Branch coverage from V8's own block coverage (NODE_V8_COVERAGE), computed the way c8 and
// `node --experimental-test-coverage` count it: every range V8 reports for a function with
// block coverage is a branch (the function body included), covered when its count is > 0;
// a function V8 never compiled counts as one uncovered branch. Functions listed in
// `exclude` (encoders, option checks: not parsers) are left out and named in the report.

import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

interface V8Range {
  startOffset: number;
  endOffset: number;
  count: number;
}
interface V8Function {
  functionName: string;
  ranges: V8Range[];
  isBlockCoverage: boolean;
}
interface V8Script {
  url: string;
  functions: V8Function[];
}

export interface FileCoverage {
  file: string;
  branches: number;
  covered: number;
  /** Uncovered branches as "line: source text". */
  uncovered: string[];
}

/** Merges every coverage JSON in `dir` for the given files (dist paths, relative to `root`). */
export function branchCoverage(
  dir: string,
  root: string,
  files: readonly string[],
  exclude: Readonly<Record<string, readonly string[]>> = {},
): FileCoverage[] {
  // V8 leaves out a nested range whose count equals its parent's. So a range that one
  // process (or worker thread) reports may be absent from another's report of the same
  // file: there its count is that of its innermost enclosing range. Per file, keep each
  // report's ranges, then give every range of the union its count in every report.
  const reports = new Map<string, { r: V8Range; fn: string }[][]>();
  const wanted = new Set(files.map((f) => path.resolve(root, f)));
  for (const name of readdirSync(dir)) {
    if (!name.endsWith('.json')) continue;
    const data = JSON.parse(readFileSync(path.join(dir, name), 'utf8')) as { result: V8Script[] };
    for (const script of data.result) {
      if (!script.url.startsWith('file:')) continue;
      const file = fileURLToPath(script.url);
      if (!wanted.has(file)) continue;
      const ranges: { r: V8Range; fn: string }[] = [];
      for (const fn of script.functions) {
        for (const r of fn.isBlockCoverage ? fn.ranges : fn.ranges.slice(0, 1))
          ranges.push({ r, fn: fn.functionName });
      }
      let list = reports.get(file);
      if (list === undefined) reports.set(file, (list = []));
      list.push(ranges);
    }
  }
  const merged = new Map<string, Map<string, { r: V8Range; fn: string }>>();
  for (const [file, list] of reports) {
    const union = new Map<string, { r: V8Range; fn: string }>();
    for (const ranges of list) {
      for (const x of ranges) {
        const key = `${x.r.startOffset}:${x.r.endOffset}`;
        if (!union.has(key)) union.set(key, { r: { ...x.r, count: 0 }, fn: x.fn });
      }
    }
    for (const ranges of list) {
      for (const u of union.values()) {
        let best: V8Range | null = null;
        for (const { r } of ranges) {
          if (r.startOffset <= u.r.startOffset && r.endOffset >= u.r.endOffset) {
            if (best === null || r.endOffset - r.startOffset <= best.endOffset - best.startOffset) best = r;
          }
        }
        if (best !== null && best.count > u.r.count) u.r.count = best.count;
      }
    }
    merged.set(file, union);
  }
  const out: FileCoverage[] = [];
  for (const f of files) {
    const abs = path.resolve(root, f);
    const m = merged.get(abs);
    const excluded = new Set(exclude[f] ?? []);
    const source = readFileSync(abs, 'utf8');
    const lineOf = (offset: number) => source.slice(0, offset).split('\n').length;
    // tsc's CommonJS helpers (__importStar ...) come before this line: not the parser's code.
    const bodyAt = Math.max(0, source.indexOf('Object.defineProperty(exports, "__esModule"'));
    let branches = 0;
    let covered = 0;
    const uncovered: string[] = [];
    // The script's top-level range (offset 0 to the end) is not a branch.
    for (const { r, fn } of m?.values() ?? []) {
      if (r.startOffset < bodyAt) continue;
      if (r.startOffset === 0 && r.endOffset >= source.length - 1) continue;
      if (excluded.has(fn) || [...excluded].some((e) => fn.endsWith(`.${e}`))) continue;
      branches++;
      if (r.count > 0) covered++;
      else {
        const line = lineOf(r.startOffset);
        const text = source
          .slice(r.startOffset, Math.min(r.endOffset, r.startOffset + 70))
          .replace(/\s+/g, ' ');
        uncovered.push(`${line} ${fn || '(anonymous)'}: ${text}`);
      }
    }
    if (m === undefined) uncovered.push('never loaded');
    out.push({ file: f, branches, covered, uncovered });
  }
  return out;
}

export function percent(files: readonly FileCoverage[]): number {
  const b = files.reduce((s, f) => s + f.branches, 0);
  const c = files.reduce((s, f) => s + f.covered, 0);
  return b === 0 ? 0 : (100 * c) / b;
}
