// `convert` in bounded memory (issue 11, step 5): it honours the chunk writer's backpressure,
// so its peak RSS does not grow with the input. Two captures, one ten times the other, are
// converted in child processes with a capped V8 heap, per compression; the larger may not
// cost more than a stated allowance over the smaller, and both stay under a stated bound.
// Before the fix the queue of CSV waiting for disk grew with the input (plain: +54 MiB from
// 52 k to 520 k frames here; +213 MiB from 208 k to 2.0 M frames with the CLI).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { ChunkWriter, type Compression } from '../../enricher/output/index';
import { walkFrames } from '../support/dnstap-frames';
import { data, start, stop } from '../support/fstrm-builder';
import { FIXTURES_DIR } from '../support/peers';
import { assertZstdRefused, NODE_HAS_ZSTD } from '../support/zstd';

const run = promisify(execFile);
const CHILD = path.resolve(__dirname, '../support/convert-memory-child.js');
const BULK = path.join(FIXTURES_DIR, 'unbound-local-unix-bulk.fstrm');
const MIB = 1024 * 1024;
/**
 * The stated bounds on convert's peak RSS, and what ten times the input may add (GC timing and
 * heap sizing, not a queue). Plain: the writer recycles its block buffers, so RSS is flat
 * (measured here: 63-84 MiB on Node 20 and 24 at both sizes). Compressed: every block leaves
 * zlib's output buffers (~0.1-0.2 MiB) as garbage outside the V8 heap, which V8 only collects
 * once external memory grew by its soft limit (64 MiB); RSS plateaus that much higher instead
 * of staying flat (Node 20 gzip: 72 / 100 / 112 MiB at 208 k / 2.0 M / 6.0 M frames; Node 24
 * zstd 92 / 99 MiB at 208 k / 2.0 M).
 */
const LIMITS: Record<Compression, { peak: number; growth: number }> = {
  none: { peak: 128 * MIB, growth: 16 * MIB },
  gzip: { peak: 160 * MIB, growth: 48 * MIB },
  zstd: { peak: 160 * MIB, growth: 48 * MIB },
};
// The V8 heap cap for the children: the queued CSV is Buffer memory outside it, so RSS is
// what is checked, the cap only keeps the JS heap from hiding growth behind lazy GC.
const HEAP_CAP_MIB = 64;

/** The bulk fixture's data frames repeated `copies` times between one START and STOP. */
function buildCapture(file: string, copies: number): number {
  const frames = walkFrames(readFileSync(BULK));
  const region = Buffer.concat(frames.map((f) => data(f)));
  const fd = openSync(file, 'w');
  try {
    writeSync(fd, start());
    for (let i = 0; i < copies; i++) writeSync(fd, region);
    writeSync(fd, stop());
  } finally {
    closeSync(fd);
  }
  return frames.length * copies;
}

async function convertInChild(capture: string, out: string, compression: Compression) {
  const heap = `--max-old-space-size=${HEAP_CAP_MIB}`;
  const r = await run(process.execPath, [heap, CHILD, capture, out, compression]);
  return JSON.parse(r.stdout) as { frames: number; rows: number; maxRssBytes: number };
}

for (const compression of ['none', 'gzip', 'zstd'] as const)
  test(`convert (${compression}): peak RSS stays under ${LIMITS[compression].peak / MIB} MiB and 10x the input adds at most ${LIMITS[compression].growth / MIB} MiB${compression === 'zstd' ? ' (Node without zstd: refused)' : ''}`, async (t) => {
    if (compression === 'zstd' && !NODE_HAS_ZSTD) {
      // No zstd here: what there is to check is that it is refused up front.
      return assertZstdRefused(() => new ChunkWriter({ outputDir: tmpdir(), enricherId: 'm', compression }));
    }
    const dir = mkdtempSync(path.join(tmpdir(), 'snowtap-convert-mem-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const results = [];
    for (const copies of [4, 40]) {
      const capture = path.join(dir, `x${copies}.fstrm`);
      const frames = buildCapture(capture, copies);
      const out = path.join(dir, `out-${copies}`);
      const r = await convertInChild(capture, out, compression);
      assert.equal(r.frames, frames);
      assert.equal(r.rows, frames);
      // Free the disk before the next, larger run.
      rmSync(out, { recursive: true, force: true });
      rmSync(capture, { force: true });
      results.push(r);
    }
    const [small, large] = results as [(typeof results)[0], (typeof results)[0]];
    const mib = (n: number) => `${(n / MIB).toFixed(1)} MiB`;
    t.diagnostic(
      `peak RSS: ${small.frames} frames ${mib(small.maxRssBytes)}, ${large.frames} frames ${mib(large.maxRssBytes)}`,
    );
    const limit = LIMITS[compression];
    assert.ok(large.maxRssBytes <= limit.peak, `peak RSS ${mib(large.maxRssBytes)} > ${mib(limit.peak)}`);
    assert.ok(
      large.maxRssBytes - small.maxRssBytes <= limit.growth,
      `10x the input added ${mib(large.maxRssBytes - small.maxRssBytes)} of RSS`,
    );
  });
