// `convert` in bounded memory (issue 11, step 5): it honours the chunk writer's backpressure,
// so its peak RSS does not grow with the input. Two captures, one ten times the other, are
// converted in child processes with a capped V8 heap; the larger may not cost more than a
// little noise over the smaller, and both stay under a stated bound. Before the fix the queue
// of CSV waiting for disk grew with the input (+37 MiB from 208 k to 520 k frames).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { walkFrames } from '../support/dnstap-frames';
import { data, start, stop } from '../support/fstrm-builder';
import { FIXTURES_DIR } from '../support/peers';

const run = promisify(execFile);
const CHILD = path.resolve(__dirname, '../support/convert-memory-child.js');
const BULK = path.join(FIXTURES_DIR, 'unbound-local-unix-bulk.fstrm');
const MIB = 1024 * 1024;
// The stated bound on convert's peak RSS with the default options (measured: ~70 MiB on
// Node 20, ~85 MiB on Node 24, for 27 MB and 262 MB captures alike).
const PEAK_RSS_BOUND = 128 * MIB;
// What ten times the input may add: GC timing and heap sizing, not a queue.
const GROWTH_ALLOWED = 16 * MIB;
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

async function convertInChild(capture: string, out: string) {
  const r = await run(process.execPath, [`--max-old-space-size=${HEAP_CAP_MIB}`, CHILD, capture, out]);
  return JSON.parse(r.stdout) as { frames: number; rows: number; maxRssBytes: number };
}

test('convert: peak RSS stays under the bound and does not grow with a 10x larger input', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'snowtap-convert-mem-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const results = [];
  for (const copies of [4, 40]) {
    const capture = path.join(dir, `x${copies}.fstrm`);
    const frames = buildCapture(capture, copies);
    const out = path.join(dir, `out-${copies}`);
    const r = await convertInChild(capture, out);
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
  assert.ok(
    large.maxRssBytes <= PEAK_RSS_BOUND,
    `peak RSS ${mib(large.maxRssBytes)} > ${mib(PEAK_RSS_BOUND)}`,
  );
  assert.ok(
    large.maxRssBytes - small.maxRssBytes <= GROWTH_ALLOWED,
    `10x the input added ${mib(large.maxRssBytes - small.maxRssBytes)} of RSS`,
  );
});
