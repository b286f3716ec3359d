// Benchmark: dnstap payload decodes per second, hand-written lazy decoder (decodeDnstap)
// versus the protobufjs reflection decoder (Dnstap.decode), over the frames of a real bulk
// capture repeated to ~2M decodes; then DnstapEncoder re-encoding the same records. The measurement behind keeping protobufjs off the
// per-record path (proto/dnstap/README.md).
//
//   node dist/loadtest/bench-dnstap.js [--total N] [--rounds N] [FILE.fstrm ...]
//
// protobufjs static code (pbjs -t static-module) is not measured: protobufjs-cli is not
// installed. Its decode functions come from the same code generator (src/decoder.js) that
// reflection runs at first use, so it would decode at about the reflection speed.

import fs from 'node:fs';
import path from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { decodeDnstap } from '../proto/dnstap/decoder';
import { DnstapEncoder, type DnstapFields } from '../proto/dnstap/encoder';
import { Dnstap } from '../proto/dnstap/schema';
import { DnstapView } from '../proto/dnstap/view';
import { walkFrames } from '../test/support/dnstap-frames';

const DEFAULT_FILE = path.resolve(__dirname, '../../test/fixtures/unbound-local-unix-bulk.fstrm');

interface Options {
  total: number;
  rounds: number;
  files: string[];
}

function parseArgs(argv: string[]): Options {
  const o: Options = { total: 2_000_000, rounds: 5, files: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--total' || a === '--rounds') {
      const n = Number(argv[++i]);
      if (!Number.isInteger(n) || n <= 0) throw new Error(`${a} needs a positive integer`);
      if (a === '--total') o.total = n;
      else o.rounds = n;
    } else if (a.startsWith('--')) throw new Error(`unknown option ${a} (known: --total, --rounds)`);
    else o.files.push(a);
  }
  if (o.files.length === 0) o.files.push(DEFAULT_FILE);
  return o;
}

// Garbage collections, counted through perf_hooks: what per-frame allocation costs beyond
// the decode itself. Entries arrive asynchronously, hence the yield before reading them.
const gc = { count: 0, ms: 0 };
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    gc.count++;
    gc.ms += e.duration;
  }
}).observe({ entryTypes: ['gc'] });
const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

/** Runs `decodeAll` once per round; returns the median decodes/s and the checksum. */
async function measure(
  name: string,
  o: Options,
  frames: Buffer[],
  decodeAll: () => number,
  unit = 'decodes',
): Promise<number> {
  decodeAll(); // warm-up: JIT, protobufjs code generation
  await settle();
  gc.count = 0;
  gc.ms = 0;
  const rates: number[] = [];
  let check = 0;
  for (let r = 0; r < o.rounds; r++) {
    const t0 = process.hrtime.bigint();
    check = decodeAll();
    const ns = Number(process.hrtime.bigint() - t0);
    rates.push((frames.length * Math.ceil(o.total / frames.length) * 1e9) / ns);
  }
  await settle();
  rates.sort((a, b) => a - b);
  const median = rates[rates.length >> 1];
  console.log(
    `${name.padEnd(34)} ${(median / 1e6).toFixed(2).padStart(6)} M ${unit}/s ` +
      `${(1e9 / median).toFixed(0).padStart(4)} ns/frame (min ${(rates[0] / 1e6).toFixed(2)}, ` +
      `max ${(rates[rates.length - 1] / 1e6).toFixed(2)}); ${gc.count} GCs, ` +
      `${gc.ms.toFixed(0)} ms GC in ${o.rounds} rounds; checksum ${check}`,
  );
  return median;
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const frames = o.files.flatMap((f) => walkFrames(fs.readFileSync(f)));
  const repeats = Math.ceil(o.total / frames.length);
  const bytes = frames.reduce((s, f) => s + f.length, 0);
  console.log(
    `${frames.length} frames (${(bytes / frames.length).toFixed(0)} B average) x ${repeats} = ` +
      `${frames.length * repeats} decodes per round, ${o.rounds} rounds, node ${process.version}`,
  );

  const view = new DnstapView();
  const lazy = await measure('decodeDnstap (lazy, hand-written)', o, frames, () => {
    let sum = 0; // read what a record needs, so no work can be optimised away
    for (let r = 0; r < repeats; r++) {
      for (const f of frames) {
        decodeDnstap(f, 0, f.length, view);
        sum += view.type + view.queryMessageLen + view.responseMessageLen + view.queryPort;
      }
    }
    return sum;
  });
  const reflection = await measure('protobufjs Dnstap.decode (reflect)', o, frames, () => {
    let sum = 0;
    for (let r = 0; r < repeats; r++) {
      for (const f of frames) {
        const m = Dnstap.decode(f) as unknown as {
          message: { type: number; queryMessage: Buffer; responseMessage: Buffer; queryPort: number };
        };
        sum += m.message.type + m.message.queryMessage.length + m.message.responseMessage.length;
        sum += m.message.queryPort;
      }
    }
    return sum;
  });
  console.log('protobufjs static code               skipped: protobufjs-cli (pbjs) is not installed');
  console.log(`speed-up of the lazy decoder over protobufjs reflection: ${(lazy / reflection).toFixed(1)}x`);

  // The encoder behind the demo producer and the load generator, re-encoding the same
  // records (field sets taken from the capture up front, outside the timing).
  const fields: DnstapFields[] = frames.map((f) => {
    decodeDnstap(f, 0, f.length, view);
    const bytes = (off: number, len: number) => (off < 0 ? null : Buffer.from(f.subarray(off, off + len)));
    return {
      identity: bytes(view.identityOff, view.identityLen),
      version: bytes(view.versionOff, view.versionLen),
      type: view.type,
      socketFamily: view.socketFamily,
      socketProtocol: view.socketProtocol,
      queryAddress: bytes(view.queryAddressOff, view.queryAddressLen),
      responseAddress: bytes(view.responseAddressOff, view.responseAddressLen),
      queryPort: view.queryPort,
      responsePort: view.responsePort,
      queryTimeSec: view.queryTimeSec,
      queryTimeNsec: view.queryTimeNsec,
      queryMessage: bytes(view.queryMessageOff, view.queryMessageLen),
      responseTimeSec: view.responseTimeSec,
      responseTimeNsec: view.responseTimeNsec,
      responseMessage: bytes(view.responseMessageOff, view.responseMessageLen),
    };
  });
  const encoder = new DnstapEncoder();
  const out = Buffer.alloc(1 << 20);
  await measure(
    'DnstapEncoder.encodeInto',
    o,
    frames,
    () => {
      let sum = 0;
      for (let r = 0; r < repeats; r++) {
        for (const f of fields) sum += encoder.encodeInto(f, out, 0);
      }
      return sum;
    },
    'encodes',
  );
}

main().then(
  () => process.exit(0), // the gc observer would keep the process alive
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
