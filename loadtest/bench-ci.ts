// `npm run bench:ci`: the benchmarks' short forms for CI. Each runs with --quick and writes
// its JSON; every figure is compared with its floor (or ceiling) in bench-floors.json, set at
// about half (twice) what the same --quick run gave on this project's 2-core machine, quiet,
// on Node 24 (2026-12-07: convert 892 k/s plain, 690 k/s gzip; e2e replay 666 k/s; enricher
// over the link 1.11 M/s = 1.27x convert, paced ack p99 55 ms; sidecar 0.6 us/frame, 83 MiB;
// convert 4.5x Go `dnstap -y` on 312 k frames), with room for a loaded machine: so only a
// gross regression (>= 2x slower, or 2x the memory) fails; the full benchmarks (`npm run
// bench`, `npm run bench:e2e`, `npm run bench:enricher`, ...) measure.
//
//   node dist/loadtest/bench-ci.js [--only NAME]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

interface Floor {
  /** JSON path into the bench's output: keys separated by '.', array indexes as numbers. */
  path: string;
  /** 'min': the figure must be at least `value`; 'max': at most. */
  kind: 'min' | 'max';
  value: number;
  unit: string;
}

interface BenchFloors {
  script: string;
  args: string[];
  floors: Floor[];
}

const FLOORS: Record<string, BenchFloors> = JSON.parse(
  readFileSync(path.join(__dirname, '../../loadtest/bench-floors.json'), 'utf8'),
);

function pick(value: unknown, jsonPath: string): number {
  let v: unknown = value;
  for (const key of jsonPath.split('.')) {
    if (v === null || typeof v !== 'object') return Number.NaN;
    v = (v as Record<string, unknown>)[key];
  }
  return typeof v === 'number' ? v : Number.NaN;
}

function main(): void {
  const args = process.argv.slice(2);
  const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined;
  const dir = mkdtempSync(path.join(tmpdir(), 'snowtap-bench-ci-'));
  const failures: string[] = [];
  try {
    for (const [name, bench] of Object.entries(FLOORS)) {
      if (only !== undefined && name !== only) continue;
      const json = path.join(dir, `${name}.json`);
      const t0 = Date.now();
      const r = spawnSync(
        process.execPath,
        [path.join(__dirname, bench.script), ...bench.args, '--json', json],
        {
          stdio: 'inherit',
        },
      );
      if (r.status !== 0) {
        failures.push(`${name}: exited ${r.status ?? r.signal}`);
        continue;
      }
      const out = JSON.parse(readFileSync(json, 'utf8'));
      for (const f of bench.floors) {
        const got = pick(out, f.path);
        const ok = f.kind === 'min' ? got >= f.value : got <= f.value;
        const shown = Math.abs(got) >= 100 ? Math.round(got) : Number(got.toPrecision(3));
        const line = `${name} ${f.path}: ${shown} ${f.unit} (${f.kind === 'min' ? 'floor' : 'ceiling'} ${f.value})`;
        console.log(`bench-ci: ${ok ? 'ok  ' : 'FAIL'} ${line}`);
        if (!ok) failures.push(line);
      }
      console.log(`bench-ci: ${name} took ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  if (failures.length > 0) {
    console.error(`bench-ci: ${failures.length} gross regression(s):\n  ${failures.join('\n  ')}`);
    process.exit(1);
  }
}

main();
