// Frame Streams throughput: decoding the bulk unbound fixture replicated in memory to
// ~1M data frames, fed in 64 KiB chunks as a socket would deliver them; plus packing the
// same payloads with FramePacker, as the demo producer and load generator do.
//
//   node dist/loadtest/bench-framestream.js [targetFrames] [chunkBytes]

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { FrameDecoder } from '../proto/framestream/decoder';
import { encodeStart, encodeStop, FramePacker } from '../proto/framestream/encoder';
import { ReaderSession } from '../proto/framestream/reader';

const FIXTURE = path.resolve(__dirname, '../../test/fixtures/unbound-local-unix-bulk.fstrm');
const TARGET_FRAMES = Number(process.argv[2] ?? 1_000_000);
const CHUNK = Number(process.argv[3] ?? 64 * 1024);
const RUNS = 7;

/** START + the fixture's data frames repeated to reach the target + STOP. */
function buildStream(): { stream: Buffer; frames: number; payloads: Buffer[] } {
  const fixture = readFileSync(FIXTURE);
  const startLen = 8 + fixture.readUInt32BE(4);
  const body = fixture.subarray(startLen, fixture.length - encodeStop().length);
  const payloads: Buffer[] = [];
  for (let at = 0; at < body.length; ) {
    const len = body.readUInt32BE(at);
    payloads.push(body.subarray(at + 4, at + 4 + len));
    at += 4 + len;
  }
  const copies = Math.ceil(TARGET_FRAMES / payloads.length);
  const parts = [encodeStart('protobuf:dnstap.Dnstap')];
  for (let i = 0; i < copies; i++) parts.push(body);
  parts.push(encodeStop());
  return { stream: Buffer.concat(parts), frames: copies * payloads.length, payloads };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function report(name: string, frames: number, bytes: number, secs: number[]): void {
  const best = Math.min(...secs);
  const med = median(secs);
  console.log(
    `${name.padEnd(34)} frames=${frames} best ${(frames / best / 1e6).toFixed(2)} Mframes/s ` +
      `${(bytes / best / 1e6).toFixed(0)} MB/s | median ${(frames / med / 1e6).toFixed(2)} Mframes/s ` +
      `${(bytes / med / 1e6).toFixed(0)} MB/s`,
  );
}

function benchDecode(stream: Buffer, frames: number, withSession: boolean): void {
  const chunks: Buffer[] = [];
  for (let at = 0; at < stream.length; at += CHUNK) chunks.push(stream.subarray(at, at + CHUNK));
  const secs: number[] = [];
  for (let run = 0; run < RUNS + 1; run++) {
    let count = 0;
    let sum = 0;
    const session = new ReaderSession({ mode: 'file' });
    const decoder = new FrameDecoder(
      withSession
        ? {
            onData: (buf, start, end) => {
              session.onData();
              count++;
              sum += buf[start]! + end - start;
            },
            onControl: (f) => {
              session.onControl(f);
            },
          }
        : {
            onData: (buf, start, end) => {
              count++;
              sum += buf[start]! + end - start;
            },
            onControl: () => {},
          },
    );
    const t0 = process.hrtime.bigint();
    for (const c of chunks) decoder.write(c);
    decoder.end();
    if (withSession) session.end();
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    if (count !== frames || sum === 0) throw new Error(`decoded ${count} frames, expected ${frames}`);
    if (run > 0) secs.push(dt); // run 0 warms up the JIT
  }
  report(withSession ? 'decode + ReaderSession' : 'decode (FrameDecoder only)', frames, stream.length, secs);
}

function benchPack(payloads: Buffer[], frames: number): void {
  const secs: number[] = [];
  let bytes = 0;
  for (let run = 0; run < RUNS + 1; run++) {
    const packer = new FramePacker();
    bytes = 0;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < frames; i++) {
      const p = payloads[i % payloads.length]!;
      if (!packer.append(p)) {
        bytes += packer.takeView().length;
        packer.append(p);
      }
    }
    bytes += packer.takeView().length;
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    if (run > 0) secs.push(dt);
  }
  report('encode (FramePacker, 256 KiB)', frames, bytes, secs);
}

const { stream, frames, payloads } = buildStream();
console.log(
  `bench-framestream: ${frames} data frames, ${(stream.length / 1e6).toFixed(1)} MB, ` +
    `avg payload ${(stream.length / frames - 4).toFixed(0)} B, chunks of ${CHUNK} B, ` +
    `best/median of ${RUNS} runs, node ${process.version}`,
);
benchDecode(stream, frames, false);
benchDecode(stream, frames, true);
benchPack(payloads, frames);
