// A/B of the per-record cost of RecordPipeline.process between builds and row options, for a
// shared machine: every variant runs in one process, interleaved round by round, timed in
// process CPU time (not wall time), so other load on the machine stretches all variants alike
// and time-slicing does not count. Frames: the bulk fixture, held in memory (hot).
//
//   node dist/loadtest/bench-ab.js [--rounds N] VARIANT...
//   VARIANT = LABEL=DIST_DIR[:JSON_ROW_OPTIONS], e.g.
//     before=/tmp/old/dist  after=dist  'mask=dist:{"maskClientIpv4":24,"maskClientIpv6":56}'
// Give each build at most one variant with non-default options, or list the default one first
// in its own build: variants sharing a build share its JIT feedback.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { walkFrames } from '../test/support/dnstap-frames';
import { BULK_FIXTURE } from './capture';

interface Variant {
  label: string;
  // biome-ignore lint/suspicious/noExplicitAny: pipelines of other builds, loaded by path
  pipe: any;
  // biome-ignore lint/suspicious/noExplicitAny: a RowSource of that build
  src: any;
  cpuNs: number[];
}

const args = process.argv.slice(2);
const at = args.indexOf('--rounds');
const ROUNDS = at >= 0 ? Number(args.splice(at, 2)[1]) : 11;
const REPS = 20;

function load(spec: string): Variant {
  const eq = spec.indexOf('=');
  const label = spec.slice(0, eq);
  const rest = spec.slice(eq + 1);
  const colon = rest.indexOf(':');
  const dist = path.resolve(colon < 0 ? rest : rest.slice(0, colon));
  const options = colon < 0 ? undefined : JSON.parse(rest.slice(colon + 1));
  const { RecordPipeline } = require(path.join(dist, 'enricher/pipeline/pipeline.js'));
  const { MAX_ROW_BYTES, RowSource } = require(path.join(dist, 'enricher/pipeline/row-encoder.js'));
  const sink = { rowTarget: Buffer.alloc(MAX_ROW_BYTES), beginRow: () => 0, endRow: () => {} };
  const pipe =
    options === undefined
      ? new RecordPipeline(sink, 'bench', () => null)
      : new RecordPipeline(sink, 'bench', () => null, options);
  return { label, pipe, src: new RowSource('file-bench', ''), cpuNs: [] };
}

const variants = args.map(load);
if (variants.length === 0) throw new Error('usage: bench-ab.js [--rounds N] LABEL=DIST_DIR[:JSON] ...');
const frames = walkFrames(readFileSync(BULK_FIXTURE));
for (let r = 0; r < ROUNDS; r++) {
  for (const v of variants) {
    const c0 = process.cpuUsage();
    for (let k = 0; k < REPS; k++)
      for (let i = 0; i < frames.length; i++) {
        const f = frames[i]!;
        v.pipe.process(f, 0, f.length, v.src, 0, i);
      }
    const c = process.cpuUsage(c0);
    v.cpuNs.push(((c.user + c.system) * 1000) / (REPS * frames.length));
  }
}
for (const v of variants) {
  const s = [...v.cpuNs].sort((a, b) => a - b);
  const rows = v.pipe.counters.rows;
  console.log(
    `${v.label.padEnd(16)} median ${s[s.length >> 1]!.toFixed(0)} ns/record CPU (min ${s[0]!.toFixed(0)}, ` +
      `max ${s[s.length - 1]!.toFixed(0)}; ${ROUNDS} rounds x ${REPS * frames.length} records), ` +
      `${(v.pipe.counters.rowBytes / rows).toFixed(0)} bytes/row`,
  );
}
