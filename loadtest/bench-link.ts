// Link Batch throughput: encoding ~130-byte records 1000 per batch with BatchEncoder (the
// agent's hot path), and decoding them with BatchView, alone and behind LinkFrameDecoder fed
// in 64 KiB chunks as a socket would deliver them (the enricher's hot path). protobufjs
// decoding the same batches is shown for scale.
//
//   node dist/loadtest/bench-link.js [records] [perBatch] [chunkBytes]

import { BatchEncoder } from '../proto/link/batch-encoder';
import { BatchView } from '../proto/link/batch-view';
import { LinkFrameDecoder } from '../proto/link/decoder';
import { BatchType } from '../proto/link/schema';
import { prng } from './prng';

const TOTAL = Number(process.argv[2] ?? 2_000_000);
const PER_BATCH = Number(process.argv[3] ?? 1000);
const CHUNK = Number(process.argv[4] ?? 64 * 1024);
const RUNS = 7;

/** 4096 distinct records of 110..150 bytes (mean 130), deterministic. */
function makeRecords(): Buffer[] {
  const rand = prng(12345);
  return Array.from({ length: 4096 }, () => {
    const b = Buffer.allocUnsafe(110 + Math.floor(rand() * 41));
    for (let i = 0; i < b.length; i++) b[i] = Math.floor(rand() * 256);
    return b;
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function report(name: string, records: number, bytes: number, secs: number[]): void {
  const best = Math.min(...secs);
  const med = median(secs);
  console.log(
    `${name.padEnd(36)} best ${(records / best / 1e6).toFixed(2).padStart(6)} Mrec/s ` +
      `${(bytes / best / 1e6).toFixed(0).padStart(5)} MB/s | median ${(records / med / 1e6).toFixed(2).padStart(6)} Mrec/s ` +
      `${(bytes / med / 1e6).toFixed(0).padStart(5)} MB/s`,
  );
}

function time(run: () => void): number[] {
  const secs: number[] = [];
  for (let i = 0; i < RUNS + 1; i++) {
    const t0 = process.hrtime.bigint();
    run();
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    if (i > 0) secs.push(dt); // the first run warms up the JIT
  }
  return secs;
}

function main(): void {
  const records = makeRecords();
  const batches = Math.ceil(TOTAL / PER_BATCH);
  const n = batches * PER_BATCH;
  let recordBytes = 0;
  for (let i = 0; i < n; i++) recordBytes += records[i & 4095]!.length;
  console.log(
    `${n} records in ${batches} batches of ${PER_BATCH}, ${(recordBytes / n).toFixed(1)} B/record avg`,
  );

  const enc = new BatchEncoder();
  let frames: Buffer[] = [];
  const encodeSecs = time(() => {
    frames = [];
    let r = 0;
    for (let b = 0; b < batches; b++) {
      enc.begin(b + 1, '1718100000-ab12', 1);
      for (let i = 0; i < PER_BATCH; i++) enc.append(records[r++ & 4095]!);
      frames.push(enc.finish());
    }
  });
  report('encode (BatchEncoder, finish copy)', n, recordBytes, encodeSecs);

  const view = new BatchView();
  let sink = 0;
  const viewSecs = time(() => {
    for (const f of frames) {
      view.parse(f, 5, f.length);
      while (view.nextRecord()) sink += view.recordEnd - view.recordStart + f[view.recordStart]!;
    }
  });
  report('decode (BatchView.nextRecord)', n, recordBytes, viewSecs);

  const cbSecs = time(() => {
    for (const f of frames) {
      view.parse(f, 5, f.length);
      view.forEachRecord((buf, s, e) => {
        sink += e - s + buf[s]!;
      });
    }
  });
  report('decode (BatchView.forEachRecord)', n, recordBytes, cbSecs);

  const stream = Buffer.concat(frames);
  const chunks: Buffer[] = [];
  for (let at = 0; at < stream.length; at += CHUNK) chunks.push(stream.subarray(at, at + CHUNK));
  const streamSecs = time(() => {
    const d = new LinkFrameDecoder({
      onFrame: (_t, buf, s, e) => {
        view.parse(buf, s, e);
        while (view.nextRecord()) sink += view.recordEnd - view.recordStart + buf[view.recordStart]!;
      },
    });
    for (const c of chunks) d.write(c);
    d.end();
  });
  report(`decode (frames in ${CHUNK >> 10} KiB chunks + view)`, n, recordBytes, streamSecs);

  const refFrames = frames.slice(0, Math.max(1, Math.floor(frames.length / 10)));
  const refN = refFrames.length * PER_BATCH;
  const refSecs = time(() => {
    for (const f of refFrames)
      sink += (BatchType.decode(f.subarray(5)) as unknown as { records: Buffer[] }).records.length;
  });
  report('decode (protobufjs, for scale)', refN, (recordBytes * refN) / n, refSecs);
  if (sink === -1) console.log(sink);
}

main();
