import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, test } from 'node:test';
import * as zlib from 'node:zlib';
import type { CommitInfo } from '../../enricher/output/chunk-sink';
import {
  ChunkWriter,
  type ChunkWriterOptions,
  ROWS_PER_CLOCK_READ,
} from '../../enricher/output/chunk-writer';
import { zstdAvailable } from '../../enricher/output/compression';
import { HEADER_ROW } from '../../enricher/output/csv';
import { OutputError } from '../../enricher/output/errors';
import { salvageGzip, salvageZstd, zstdFrameEnd } from '../../enricher/output/salvage';
import { finalFiles, listFiles, parseChunk, readChunkText, row } from '../support/output-rows';
import { assertZstdRefused, NODE_HAS_ZSTD, versionHasZstd } from '../support/zstd';

const T0 = Date.UTC(2026, 10, 22, 3, 18, 39, 123);
const NAME = /^2026\/11\/22\/03\/snowtap-enr-0-20261122T031839\.123Z-[0-9a-f]{8}-\d{6}\.csv(\.gz)?$/;
const dirs: string[] = [];

function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'snowtap-out-'));
  dirs.push(d);
  return d;
}

afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

interface Harness {
  dir: string;
  w: ChunkWriter;
  commits: CommitInfo[];
  clock: { t: number };
}

function harness(opts: Partial<ChunkWriterOptions> = {}): Harness {
  const dir = tmp();
  const commits: CommitInfo[] = [];
  const clock = { t: T0 };
  const w = new ChunkWriter({
    outputDir: dir,
    enricherId: 'enr-0',
    maxRows: 1000,
    maxBytes: 1 << 30,
    maxAgeMs: 60_000,
    gzip: false,
    now: () => clock.t,
    onCommit: (c) => commits.push(c),
    ...opts,
  });
  return { dir, w, commits, clock };
}

function append(w: ChunkWriter, from: number, to: number): void {
  for (let i = from; i < to; i++) {
    const r = row(i);
    w.appendRow(r, 0, r.length);
  }
}

async function allIds(dir: string): Promise<string[]> {
  const ids: string[] = [];
  for (const f of finalFiles(dir))
    for (const r of await parseChunk(path.join(dir, f))) ids.push(r.record_id!);
  return ids;
}

function ids(from: number, to: number): string[] {
  const out: string[] = [];
  for (let i = from; i < to; i++) out.push(`r-${String(i).padStart(8, '0')}`);
  return out;
}

function gzipMembers(file: string): number {
  // Each member starts with the gzip magic; count members by walking salvage prefixes is
  // indirect, so count inflate restarts instead.
  const data = fs.readFileSync(file);
  let n = 0;
  for (let at = 0; at < data.length; n++) {
    const res = zlib.inflateRawSync(data.subarray(at + 10), { info: true }) as unknown as {
      engine: { bytesWritten: number };
    };
    at += 10 + res.engine.bytesWritten + 8;
  }
  return n;
}

for (const gzip of [false, true]) {
  describe(`rotation (${gzip ? 'gzip' : 'plain'})`, () => {
    test('by rows: full chunks of maxRows, the rest on close, header first, order kept', async () => {
      const h = harness({ gzip, maxRows: 10 });
      append(h.w, 0, 25);
      await h.w.close();
      const files = finalFiles(h.dir);
      assert.equal(files.length, 3);
      for (const f of files) {
        assert.match(f, NAME);
        assert.equal(f.endsWith('.gz'), gzip);
        assert.ok(readChunkText(path.join(h.dir, f)).startsWith(HEADER_ROW));
      }
      assert.deepEqual(
        h.commits.map((c) => c.rows),
        [10, 10, 5],
      );
      assert.deepEqual(
        files.map((f) => path.join(h.dir, f)),
        h.commits.map((c) => c.path),
      );
      assert.deepEqual(await allIds(h.dir), ids(0, 25));
      assert.deepEqual(listFiles(h.dir), files, 'partial directory released on close');
      const s = h.w.stats();
      assert.equal(s.chunksCommitted, 3);
      assert.equal(s.rowsCommitted, 25);
      assert.equal(s.partialRows, 0);
    });

    test('by bytes (uncompressed, header included); an oversized row gets its own chunk', async () => {
      const rowLen = row(0).length;
      const maxBytes = HEADER_ROW.length + 3 * rowLen;
      const h = harness({ gzip, maxBytes, blockBytes: 1024 });
      append(h.w, 0, 7);
      const big = row(7, { qname: `${'a'.repeat(60)}.`.repeat(40) });
      h.w.appendRow(big, 0, big.length);
      append(h.w, 8, 9);
      await h.w.close();
      assert.deepEqual(
        h.commits.map((c) => c.rows),
        [3, 3, 1, 1, 1],
      );
      for (const c of h.commits.slice(0, 3)) assert.ok(c.bytes <= maxBytes);
      assert.equal(h.commits[3]!.bytes, HEADER_ROW.length + big.length);
      assert.deepEqual(await allIds(h.dir), ids(0, 9));
    });

    test('by age: tick() commits an idle chunk, appendRow() checks age too', async () => {
      const h = harness({ gzip, maxAgeMs: 60_000 });
      append(h.w, 0, 2);
      h.clock.t += 30_000;
      append(h.w, 2, 3);
      assert.equal(h.w.stats().openAgeMs, 30_000);
      h.clock.t += 29_999;
      h.w.tick();
      assert.equal(h.w.stats().partialRows, 3, 'not due yet');
      h.clock.t += 1;
      h.w.tick();
      assert.equal(h.w.stats().partialRows, 0, 'due: committed without a new row');
      assert.equal(h.w.stats().openAgeMs, 0);
      await h.w.rotate();
      assert.equal(h.commits.length, 1);
      append(h.w, 3, 4);
      h.clock.t += 60_000;
      // appendRow() reads the clock every ROWS_PER_CLOCK_READ rows.
      let i = 4;
      do append(h.w, i, ++i);
      while (h.w.stats().partialRows > 1 && i < 4 + ROWS_PER_CLOCK_READ);
      assert.equal(h.w.stats().partialRows, 1, 'the aged chunk was committed by an append');
      await h.w.rotate();
      assert.equal(h.commits.length, 3);
      await h.w.close();
      assert.deepEqual(
        h.commits.map((c) => c.rows),
        [3, i - 4, 1],
      );
      assert.deepEqual(await allIds(h.dir), ids(0, i));
    });

    test('freshness: oldest uncommitted row age covers the open chunk and a commit in flight, 0 once published', async () => {
      const h = harness({ gzip, maxAgeMs: 60_000 });
      assert.equal(h.w.stats().oldestUncommittedAgeMs, 0, 'nothing written');
      append(h.w, 0, 2);
      h.clock.t += 60_000;
      assert.equal(h.w.stats().oldestUncommittedAgeMs, 60_000, 'the open chunk');
      h.w.tick(); // due: the commit is queued, not yet published
      assert.equal(h.w.stats().partialRows, 0);
      assert.equal(h.w.stats().oldestUncommittedAgeMs, 60_000, 'the chunk being committed');
      await h.w.rotate(); // no open chunk: waits for the queued commit
      assert.equal(h.commits.length, 1);
      assert.equal(h.w.stats().oldestUncommittedAgeMs, 0, 'published');
      append(h.w, 2, 3);
      h.clock.t += 5_000;
      assert.equal(h.w.stats().oldestUncommittedAgeMs, 5_000);
      await h.w.close();
      assert.equal(h.w.stats().oldestUncommittedAgeMs, 0);
    });

    test('whichever comes first', async () => {
      const rowLen = row(0).length;
      const h = harness({ gzip, maxRows: 4, maxBytes: HEADER_ROW.length + 3 * rowLen, maxAgeMs: 1000 });
      append(h.w, 0, 5); // bytes: 3, then 2 open
      h.clock.t += 1000;
      h.w.tick(); // age: 2
      append(h.w, 5, 6);
      await h.w.close();
      assert.deepEqual(
        h.commits.map((c) => c.rows),
        [3, 2, 1],
      );
      const h2 = harness({ gzip, maxRows: 2, maxBytes: 1 << 20 });
      append(h2.w, 0, 5);
      await h2.w.close();
      assert.deepEqual(
        h2.commits.map((c) => c.rows),
        [2, 2, 1],
      );
    });
  });
}

/** The pipeline's way in: encode (here: copy) the row straight into the writer's block. */
function place(w: ChunkWriter, r: Buffer, room: number): boolean {
  const at = w.beginRow(room);
  r.copy(w.rowTarget, at);
  return w.endRow(at + r.length);
}

describe('in-place rows (beginRow/endRow)', () => {
  // Rows of varied length, one larger than a small block, so that every path is taken:
  // a block sealed for room, a row moved to the next chunk by maxBytes, the scratch buffer
  // when the room asked for exceeds a whole block.
  const rows = Array.from({ length: 40 }, (_, i) =>
    i === 17
      ? row(i, { qname: `${'b'.repeat(60)}.`.repeat(40) })
      : row(i, { qname: 'x'.repeat(i * 7) + '.test.' }),
  );
  const cases: [string, Partial<ChunkWriterOptions>, number][] = [
    ['bytes rotation, room < block', { maxBytes: HEADER_ROW.length + 5 * 400, blockBytes: 4096 }, 3000],
    [
      'bytes rotation, room > block (scratch)',
      { maxBytes: HEADER_ROW.length + 5 * 400, blockBytes: 1024 },
      64 * 1024,
    ],
    ['rows rotation, default blocks', { maxRows: 7 }, 64 * 1024],
  ];
  for (const gzip of [false, true])
    for (const [name, opts, room] of cases)
      test(`${name} (${gzip ? 'gzip' : 'plain'}): the same chunks, bytes and rows as appendRow()`, async () => {
        const ref = harness({ gzip, ...opts });
        const h = harness({ gzip, ...opts });
        for (const r of rows) {
          ref.w.appendRow(r, 0, r.length);
          place(h.w, r, room);
        }
        await Promise.all([ref.w.close(), h.w.close()]);
        const shape = (x: Harness) => x.commits.map((c) => [c.rows, c.bytes]);
        assert.ok(ref.commits.length >= 3, `${ref.commits.length} chunks`);
        assert.deepEqual(shape(h), shape(ref));
        for (const c of h.commits) assert.ok(c.rows === 1 || c.bytes <= (opts.maxBytes ?? Infinity));
        const text = (x: Harness) => finalFiles(x.dir).map((f) => readChunkText(path.join(x.dir, f)));
        assert.deepEqual(text(h), text(ref));
        assert.deepEqual(await allIds(h.dir), ids(0, rows.length));
      });

  test('age is checked on beginRow() too; beginRow() after close() throws OUTPUT_CLOSED', async () => {
    const h = harness({ maxAgeMs: 60_000 });
    place(h.w, row(0), 1024);
    h.clock.t += 60_000;
    let i = 1;
    do place(h.w, row(i), 1024);
    while (++i < 1 + ROWS_PER_CLOCK_READ && h.w.stats().partialRows > 1);
    assert.equal(h.w.stats().partialRows, 1, 'the aged chunk was committed by a beginRow()');
    await h.w.close();
    assert.deepEqual(
      h.commits.map((c) => c.rows),
      [i - 1, 1],
    );
    assert.throws(() => h.w.beginRow(1024), { code: 'OUTPUT_CLOSED' });
  });
});

describe('names', () => {
  test('unique across restarts of one id, sorted by time within a writer, hour directories', async () => {
    const a = harness({ maxRows: 1 });
    append(a.w, 0, 3);
    a.clock.t += 3_600_000 + 1;
    append(a.w, 3, 4);
    await a.w.close();
    // Same id, same clock, same sequence numbers: a restarted enricher.
    const b = new ChunkWriter({ outputDir: a.dir, enricherId: 'enr-0', maxRows: 1, now: () => T0 });
    append(b, 10, 13);
    await b.close();
    const files = finalFiles(a.dir);
    assert.equal(files.length, 7);
    assert.equal(new Set(files.map((f) => path.basename(f))).size, 7);
    assert.notEqual(a.w.incarnation, b.incarnation);
    const aNames = a.commits.map((c) => path.relative(a.dir, c.path));
    assert.deepEqual([...aNames].sort(), aNames);
    assert.ok(aNames[3]!.startsWith('2026/11/22/04/snowtap-enr-0-20261122T041839.124Z-'), aNames[3]);
    for (const n of aNames.slice(0, 3)) assert.match(n, NAME);
  });

  test('nothing is visible under a final name before it is complete', async () => {
    for (const gzip of [false, true]) {
      const h = harness({ gzip, maxRows: 7, blockBytes: 1024 });
      const seen = new Map<string, number>();
      let closed = false;
      const check = async () => {
        for (const f of finalFiles(h.dir)) {
          // A final file is complete the moment it appears: all 7 rows (the last on close: 5).
          const rows = (await parseChunk(path.join(h.dir, f))).length;
          assert.ok(rows === 7 || (closed && rows === 5), `${f} visible with ${rows} rows`);
          seen.set(f, rows);
        }
        for (const f of listFiles(path.join(h.dir, '_partial')))
          assert.match(f, /^enr-0\/(owner\.lock|.*\.partial)$/);
      };
      for (let i = 0; i < 40; i++) {
        append(h.w, i, i + 1);
        await check();
        if (i % 5 === 0) await h.w.flush();
        await check();
        await new Promise((r) => setImmediate(r));
        await check();
      }
      await h.w.close();
      closed = true;
      await check();
      assert.equal(
        [...seen.values()].reduce((a, b) => a + b, 0),
        40,
      );
    }
  });
});

describe('flush', () => {
  for (const gzip of [false, true]) {
    test(`${gzip ? 'gzip' : 'plain'}: after flush() the partial file holds every row, on a member boundary`, async () => {
      const h = harness({ gzip, blockBytes: 1024 });
      for (let round = 0; round < 5; round++) {
        append(h.w, round * 13, (round + 1) * 13);
        await h.w.flush();
        const [partial] = listFiles(h.dir).filter((f) => f.endsWith('.partial'));
        const file = path.join(h.dir, partial!);
        const data = fs.readFileSync(file);
        if (gzip) assert.equal(salvageGzip(data).keepBytes, data.length, 'ends on a member boundary');
        const text = (gzip ? zlib.gunzipSync(data) : data).toString();
        assert.equal(text.split('\r\n').length - 2, (round + 1) * 13);
      }
      assert.equal(h.w.stats().durableRows, 65);
      await h.w.close();
    });
  }

  test('concurrent flush() calls share one fsync (group commit)', async () => {
    const h = harness();
    append(h.w, 0, 100);
    const before = h.w.stats().syncs;
    await Promise.all(Array.from({ length: 10 }, () => h.w.flush()));
    assert.equal(h.w.stats().syncs - before, 1);
    await h.w.flush();
    assert.equal(h.w.stats().syncs - before, 1, 'nothing new: no fsync');
    append(h.w, 100, 101);
    const p1 = h.w.flush();
    append(h.w, 101, 102);
    const p2 = h.w.flush();
    await Promise.all([p1, p2]);
    assert.ok(h.w.stats().syncs - before <= 3);
    assert.equal(h.w.stats().durableRows, 102);
    await h.w.close();
  });

  test('gzip members: one per flushed block, all loadable as one stream', async () => {
    const h = harness({ gzip: true, blockBytes: 4096 });
    for (let i = 0; i < 6; i++) {
      append(h.w, i * 3, i * 3 + 3);
      await h.w.flush();
    }
    append(h.w, 18, 60); // spills over several 4 KiB blocks
    await h.w.close();
    const [file] = finalFiles(h.dir);
    assert.ok(gzipMembers(path.join(h.dir, file!)) >= 8);
    assert.deepEqual(await allIds(h.dir), ids(0, 60));
  });

  test('an empty writer flushes and closes without files', async () => {
    const h = harness();
    await h.w.flush();
    await h.w.rotate();
    await h.w.close();
    await h.w.close();
    assert.deepEqual(listFiles(h.dir), []);
    assert.equal(h.commits.length, 0);
    assert.throws(() => h.w.appendRow(row(0), 0, row(0).length), { code: 'OUTPUT_CLOSED' });
  });
});

describe('compression', () => {
  test('zstd is available exactly on Node >= 22.15 (23.x: >= 23.8)', () => {
    assert.equal(zstdAvailable(), NODE_HAS_ZSTD, `Node ${process.versions.node}`);
    for (const v of ['20.20.2', '22.14.0', '23.7.0']) assert.equal(versionHasZstd(v), false, v);
    for (const v of ['22.15.0', '23.8.0', '24.0.0', '24.22.3']) assert.equal(versionHasZstd(v), true, v);
  });

  test('zstd frames: one per flushed block, .csv.zst, readable as one stream (Node without zstd: refused)', async () => {
    if (!NODE_HAS_ZSTD) return assertZstdRefused(() => harness({ compression: 'zstd', gzip: undefined }));
    const h = harness({ compression: 'zstd', gzip: undefined, blockBytes: 4096 });
    const frameEnds: number[] = [];
    for (let i = 0; i < 6; i++) {
      append(h.w, i * 3, i * 3 + 3);
      await h.w.flush();
      const [partial] = listFiles(h.dir).filter((f) => f.endsWith('.partial'));
      const data = fs.readFileSync(path.join(h.dir, partial!));
      assert.deepEqual(salvageZstd(data), { keepBytes: data.length, rows: (i + 1) * 3 }, 'a frame boundary');
      frameEnds.push(data.length);
    }
    append(h.w, 18, 60); // spills over several 4 KiB blocks
    await h.w.close();
    const [file] = finalFiles(h.dir);
    assert.match(file!, /\.csv\.zst$/);
    const data = fs.readFileSync(path.join(h.dir, file!));
    let frames = 0;
    for (let at = 0; at < data.length; at = zstdFrameEnd(data, at)) frames++;
    assert.ok(frames >= 8, `${frames} frames`);
    assert.deepEqual(await allIds(h.dir), ids(0, 60));
    assert.equal(h.commits[0]!.compressedBytes, data.length);
    assert.ok(data.length < h.commits[0]!.bytes / 2, 'compressed');
  });

  test('compression options: gzip is an alias, contradictions and unknown values are refused by name', async () => {
    const dir = tmp();
    const bad: [Partial<ChunkWriterOptions>, RegExp][] = [
      [{ compression: 'lz4' as 'gzip' }, /compression must be one of none\|gzip\|zstd, got lz4/],
      [{ compression: 'zstd', gzip: true }, /gzip \(true\) contradicts compression zstd/],
      [{ compression: 'none', gzip: true }, /gzip \(true\) contradicts compression none/],
      [{ zstdLevel: 20 }, /zstdLevel/],
    ];
    for (const [over, re] of bad) {
      assert.throws(
        () => new ChunkWriter({ outputDir: dir, enricherId: 'e', ...over }),
        (err: OutputError) => err.code === 'OUTPUT_INVALID_OPTION' && re.test(err.message),
      );
    }
    const a = harness({ gzip: true, compression: 'gzip', maxRows: 1 });
    const b = harness({ gzip: false, maxRows: 1 });
    append(a.w, 0, 1);
    append(b.w, 0, 1);
    await Promise.all([a.w.close(), b.w.close()]);
    assert.match(finalFiles(a.dir)[0]!, /\.csv\.gz$/);
    assert.match(finalFiles(b.dir)[0]!, /\.csv$/);
  });
});

describe('backpressure', () => {
  test('appendRow() returns false above the high-water mark; whenDrained() resolves', async () => {
    const h = harness({ gzip: true, gzipConcurrency: 1, blockBytes: 1024 });
    let i = 0;
    while (h.w.appendRow(row(i), 0, row(i).length)) i++;
    assert.ok(i > 10 && i < 1000, String(i));
    assert.ok(h.w.stats().queuedBytes >= 8 * 1024);
    await h.w.whenDrained();
    assert.ok(h.w.stats().queuedBytes <= 4 * 1024);
    await h.w.close();
    assert.equal((await allIds(h.dir)).length, i + 1);
  });

  test('endRow() says false from the crossing row until drained; full mirrors it (RowSink contract)', async () => {
    const h = harness({ gzip: true, gzipConcurrency: 1, blockBytes: 1024 });
    assert.equal(h.w.full, false);
    await h.w.whenDrained(); // not full: at once
    let i = 0;
    while (place(h.w, row(i), 1024)) i++;
    assert.equal(h.w.full, true);
    // Rows are still taken while full, and keep saying so: nothing is refused half-encoded.
    assert.equal(place(h.w, row(++i), 1024), false);
    await h.w.whenDrained();
    assert.equal(h.w.full, false);
    assert.ok(h.w.stats().queuedBytes <= 4 * 1024);
    assert.equal(place(h.w, row(++i), 1024), true);
    await h.w.close();
    assert.deepEqual(await allIds(h.dir), ids(0, i + 1));
  });

  test('whenDrained() rejects with the writer failure', async () => {
    const h = harness({ blockBytes: 1024, maxRows: 3 });
    fs.writeFileSync(path.join(h.dir, '2026'), 'in the way of 2026/11/22/03');
    let i = 0;
    while (place(h.w, row(i), 1024)) i++;
    await assert.rejects(h.w.whenDrained(), { code: 'OUTPUT_NOT_WRITABLE' });
    await assert.rejects(h.w.whenDrained(), { code: 'OUTPUT_NOT_WRITABLE' });
    assert.throws(() => place(h.w, row(i + 1), 1024), { code: 'OUTPUT_NOT_WRITABLE' });
  });
});

describe('errors', () => {
  test('OUTPUT_NOT_WRITABLE at construction names the directory', () => {
    const base = tmp();
    fs.writeFileSync(path.join(base, 'file'), 'x');
    const dir = path.join(base, 'file', 'out');
    assert.throws(
      () => new ChunkWriter({ outputDir: dir, enricherId: 'e' }),
      (err: OutputError) =>
        err.code === 'OUTPUT_NOT_WRITABLE' && err.message.includes(dir) && err.path === dir,
    );
    if (process.getuid?.() !== 0) {
      const ro = path.join(base, 'ro');
      fs.mkdirSync(ro, { mode: 0o555 });
      assert.throws(() => new ChunkWriter({ outputDir: ro, enricherId: 'e' }), {
        code: 'OUTPUT_NOT_WRITABLE',
      });
    }
  });

  test('a failed commit rejects rotate() and every later flush(), appendRow() throws, the partial stays', async () => {
    const h = harness();
    fs.writeFileSync(path.join(h.dir, '2026'), 'in the way of 2026/11/22/03');
    append(h.w, 0, 3);
    await h.w.flush();
    await assert.rejects(h.w.rotate(), (err: OutputError) => {
      assert.ok(err instanceof OutputError);
      assert.equal(err.code, 'OUTPUT_NOT_WRITABLE');
      assert.ok(err.message.includes(path.join(h.dir, '2026')), err.message);
      return true;
    });
    await assert.rejects(h.w.flush(), { code: 'OUTPUT_NOT_WRITABLE' });
    assert.throws(() => append(h.w, 3, 4), { code: 'OUTPUT_NOT_WRITABLE' });
    assert.equal(h.w.stats().failed, true);
    await assert.rejects(h.w.close(), { code: 'OUTPUT_NOT_WRITABLE' });
    assert.equal(listFiles(h.dir).filter((f) => f.endsWith('.partial')).length, 1);
  });

  test('options are validated by name', () => {
    const dir = tmp();
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ maxRows: 0 }, /maxRows/],
      [{ maxBytes: 1.5 }, /maxBytes/],
      [{ gzipLevel: 10 }, /gzipLevel/],
      [{ blockBytes: 10 }, /blockBytes/],
      [{ maxAge: 5 }, /maxAge is unknown/],
      [{ enricherId: '../x' }, /enricherId/],
      [{ enricherId: '' }, /enricherId/],
    ];
    for (const [over, re] of bad) {
      const opts = { outputDir: dir, enricherId: 'e', ...over } as ChunkWriterOptions;
      assert.throws(
        () => new ChunkWriter(opts),
        (err: OutputError) => err.code === 'OUTPUT_INVALID_OPTION' && re.test(err.message),
      );
    }
  });
});
