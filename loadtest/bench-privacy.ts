// Per-record cost of client address minimisation (issue 9 step 1), agent side and enricher side,
// for a shared machine: every variant runs in one process, interleaved round by round, timed in
// process CPU time (other load stretches all variants alike; time-slicing does not count).
//
//   node dist/loadtest/bench-privacy.js [--rounds N]      (npm run bench:privacy)
//
// Agent (agent/edge-mask.ts, --mask-client-* / --drop-ecs on `snowtap agent`): the frame is
// copied (as the batcher copies every record into its batch: the baseline) and, in the masked
// variants, rewritten in place first - decode of the dnstap frame, the client address, the DNS
// messages parsed to find an ECS option. Each round starts from pristine frames.
// Enricher (--mask-client-* on `snowtap enricher`): RecordPipeline.process per record, plain
// and with masks (a masked copy of the address while the row is written).
// Two frame sets: the bulk fixture (Unbound CLIENT_* over a unix socket, no ECS), and synthetic
// frames with a client address in every place (test/support/privacy-scan.ts: IPv4, IPv6,
// IPv4-mapped, ECS, policy CLIENT_IP) - the worst case for the DNS parse.
import { readFileSync } from 'node:fs';
import { EdgeMask } from '../agent/edge-mask';
import { RecordPipeline, type RowSink } from '../enricher/pipeline/pipeline';
import { MAX_ROW_BYTES, RowSource } from '../enricher/pipeline/row-encoder';
import { dnstapFrame } from '../test/support/chunk-builder';
import { walkFrames } from '../test/support/dnstap-frames';
import { frames as privacyFrames } from '../test/support/privacy-scan';
import { BULK_FIXTURE } from './capture';

const args = process.argv.slice(2);
const at = args.indexOf('--rounds');
const ROUNDS = at >= 0 ? Number(args[at + 1]) : 11;
const TARGET_RECORDS = 200_000;

interface Variant {
  label: string;
  run(frames: readonly Buffer[], scratch: readonly Buffer[]): void;
  cpuNs: number[];
}

function agentVariant(label: string, mask: EdgeMask | null): Variant {
  return {
    label,
    cpuNs: [],
    run(frames, scratch) {
      for (let i = 0; i < frames.length; i++) {
        const f = frames[i]!;
        const s = scratch[i]!;
        f.copy(s, 0, 0, f.length); // the batcher's copy (and a pristine frame for the mask)
        if (mask !== null) mask.apply(s, 0, s.length);
      }
    },
  };
}

function enricherVariant(label: string, options?: ConstructorParameters<typeof RecordPipeline>[3]): Variant {
  const sink: RowSink = {
    rowTarget: Buffer.alloc(MAX_ROW_BYTES),
    beginRow: () => 0,
    endRow: () => true,
    full: false,
    whenDrained: () => Promise.resolve(),
  };
  const pipe = new RecordPipeline(sink, 'bench', () => null, options);
  const src = new RowSource('file-bench', '');
  return {
    label,
    cpuNs: [],
    run(frames) {
      for (let i = 0; i < frames.length; i++) {
        const f = frames[i]!;
        pipe.process(f, 0, f.length, src, 0, i);
      }
    },
  };
}

function bench(title: string, frames: readonly Buffer[]): void {
  const reps = Math.max(1, Math.round(TARGET_RECORDS / frames.length));
  const scratch = frames.map((f) => Buffer.alloc(f.length));
  const m = { maskClientIpv4: 24, maskClientIpv6: 56 };
  const variants = [
    agentVariant('agent copy (baseline)', null),
    agentVariant('agent mask 24/56', EdgeMask.from({ ...m, dropEcs: false })),
    agentVariant('agent drop-ecs', EdgeMask.from({ maskClientIpv4: 32, maskClientIpv6: 128, dropEcs: true })),
    agentVariant('agent mask+drop-ecs', EdgeMask.from({ ...m, dropEcs: true })),
    enricherVariant('enricher plain'),
    enricherVariant('enricher mask 24/56', m),
    enricherVariant('enricher mask+drop', { ...m, dropEcs: true }),
  ];
  for (let r = 0; r < ROUNDS; r++) {
    for (const v of variants) {
      const c0 = process.cpuUsage();
      for (let k = 0; k < reps; k++) v.run(frames, scratch);
      const c = process.cpuUsage(c0);
      v.cpuNs.push(((c.user + c.system) * 1000) / (reps * frames.length));
    }
  }
  const median = (v: Variant) => [...v.cpuNs].sort((a, b) => a - b)[v.cpuNs.length >> 1]!;
  console.log(`\n${title}: ${frames.length} frames x ${reps} per round, ${ROUNDS} rounds, CPU ns/record`);
  const agentBase = median(variants[0]!);
  const enricherBase = median(variants[4]!);
  for (const [i, v] of variants.entries()) {
    const s = [...v.cpuNs].sort((a, b) => a - b);
    const base = i < 4 ? agentBase : enricherBase;
    const delta = i === 0 || i === 4 ? '' : ` (+${(median(v) - base).toFixed(0)} over the baseline)`;
    console.log(
      `  ${v.label.padEnd(24)} median ${median(v).toFixed(0).padStart(5)}${delta}  [min ${s[0]!.toFixed(0)}, max ${s[s.length - 1]!.toFixed(0)}]`,
    );
  }
}

console.log(`Node ${process.version}`);
bench('bulk fixture (unbound-local-unix-bulk, no ECS)', walkFrames(readFileSync(BULK_FIXTURE)));
bench('privacy frames (client address everywhere, ECS)', privacyFrames().map(dnstapFrame));
