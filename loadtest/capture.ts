// Large Frame Streams captures for benchmarks and soak tests: a fixture's data frames
// repeated between one START and one STOP, written straight to disk.
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { encodeStart, encodeStop } from '../proto/framestream/encoder';

export const BULK_FIXTURE = path.resolve(__dirname, '../../test/fixtures/unbound-local-unix-bulk.fstrm');

/** Writes `out` with at least `minFrames` data frames; returns the exact count and payload region bytes. */
export function replicateCapture(
  out: string,
  minFrames: number,
  fixture = BULK_FIXTURE,
): { frames: number; bytes: number } {
  const src = readFileSync(fixture);
  const ctrlLen = src.readUInt32BE(4);
  const region = src.subarray(8 + ctrlLen, src.length - 12); // the data frames between START and STOP
  let perCopy = 0;
  for (let p = 0; p < region.length; p += 4 + region.readUInt32BE(p)) perCopy++;
  const copies = Math.max(1, Math.ceil(minFrames / perCopy));
  const fd = openSync(out, 'w');
  try {
    writeSync(fd, encodeStart('protobuf:dnstap.Dnstap'));
    for (let i = 0; i < copies; i++) writeSync(fd, region);
    writeSync(fd, encodeStop());
  } finally {
    closeSync(fd);
  }
  return { frames: copies * perCopy, bytes: copies * region.length };
}
