// Test-only Frame Streams file walker: just enough to pull dnstap payloads out of the
// fixture captures (escape + START control frame, 32-bit big-endian length-prefixed data
// frames, escape + STOP). Independent of proto/framestream on purpose, so the dnstap tests
// do not depend on the code they are not testing.

import fs from 'node:fs';
import path from 'node:path';

/** test/fixtures, from dist/test/support (or dist/test/unit: same depth). */
export const FIXTURES_DIR = path.resolve(__dirname, '../../../test/fixtures');

const CONTROL_START = 2;
const CONTROL_STOP = 3;

export interface FixtureFile {
  name: string;
  /** Data frame payloads, as views into the file's buffer. */
  frames: Buffer[];
}

function u32(buf: Buffer, p: number, what: string): number {
  if (p + 4 > buf.length) throw new Error(`fstrm walker: file ends inside ${what} at ${p}`);
  return buf.readUInt32BE(p);
}

/** Data frames of one Frame Streams file; throws unless it is START, data..., STOP, EOF. */
export function walkFrames(buf: Buffer): Buffer[] {
  let p = 0;
  if (u32(buf, p, 'escape') !== 0) throw new Error('fstrm walker: file does not start with an escape');
  const startLen = u32(buf, p + 4, 'control length');
  if (u32(buf, p + 8, 'control type') !== CONTROL_START)
    throw new Error('fstrm walker: first control is not START');
  p += 8 + startLen;
  const frames: Buffer[] = [];
  for (;;) {
    const len = u32(buf, p, 'frame length');
    p += 4;
    if (len === 0) {
      const ctrlLen = u32(buf, p, 'control length');
      if (u32(buf, p + 4, 'control type') !== CONTROL_STOP)
        throw new Error(`fstrm walker: control at ${p} is not STOP`);
      p += 4 + ctrlLen;
      if (p !== buf.length) throw new Error(`fstrm walker: ${buf.length - p} bytes after STOP`);
      return frames;
    }
    if (p + len > buf.length) throw new Error(`fstrm walker: frame at ${p} runs past the end`);
    frames.push(buf.subarray(p, p + len));
    p += len;
  }
}

/** Every *.fstrm fixture, sorted by name. */
export function loadFixtures(): FixtureFile[] {
  return fs
    .readdirSync(FIXTURES_DIR)
    .filter((n) => n.endsWith('.fstrm'))
    .sort()
    .map((name) => ({ name, frames: walkFrames(fs.readFileSync(path.join(FIXTURES_DIR, name))) }));
}
