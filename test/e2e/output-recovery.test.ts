import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, test } from 'node:test';
import { ChunkWriter } from '../../enricher/output/chunk-writer';
import type { Compression } from '../../enricher/output/compression';
import { HEADER_ROW } from '../../enricher/output/csv';
import { recoverPartials } from '../../enricher/output/recovery';
import {
  type Salvage,
  salvageGzip,
  salvagePlain,
  salvageZstd,
  zstdFrameEnd,
} from '../../enricher/output/salvage';
import {
  buildRow,
  duckdbQuery,
  finalFiles,
  listFiles,
  parseChunk,
  row,
  rowValues,
} from '../support/output-rows';
import { assertZstdRefused, NODE_HAS_ZSTD } from '../support/zstd';

const SALVAGE: Record<Compression, (data: Uint8Array) => Salvage> = {
  none: salvagePlain,
  gzip: salvageGzip,
  zstd: salvageZstd,
};

const dirs: string[] = [];
function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'snowtap-rec-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function partials(dir: string): string[] {
  return listFiles(dir).filter((f) => f.endsWith('.partial'));
}

/** A writer left open (a "crashed" one) with rows flushed in rounds; returns the flush points. */
async function crashedWriter(dir: string, id: string, compression: boolean | Compression, rounds: number[]) {
  const c: Compression = compression === true ? 'gzip' : compression === false ? 'none' : compression;
  const w = new ChunkWriter({ outputDir: dir, enricherId: id, compression: c, blockBytes: 1024 });
  const points: { size: number; rows: number }[] = [];
  let i = 0;
  for (const n of rounds) {
    for (const end = i + n; i < end; i++) w.appendRow(row(i), 0, row(i).length);
    await w.flush();
    const [p] = partials(dir);
    points.push({ size: fs.statSync(path.join(dir, p!)).size, rows: i });
  }
  const file = path.join(dir, partials(dir)[0]!);
  return { w, file, data: fs.readFileSync(file), points };
}

async function idsOf(files: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const f of files) for (const r of await parseChunk(f)) out.push(r.record_id!);
  return out;
}

function prefixIds(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `r-${String(i).padStart(8, '0')}`);
}

/**
 * On a runtime without zstd a .csv.zst partial can be neither written nor judged: recovery
 * leaves it exactly as it is, lists it, and publishes nothing from it.
 */
async function zstdPartialLeftAlone(): Promise<void> {
  const out = tmp();
  const pdir = path.join(out, '_partial', 'enr-z');
  fs.mkdirSync(pdir, { recursive: true });
  const name = 'snowtap-enr-z-20261122T031839.123Z-0a1b2c3d-000001.csv.zst.partial';
  const bytes = Buffer.from('28b52ffd0458', 'hex'); // a torn frame: zstd magic and a header byte
  fs.writeFileSync(path.join(pdir, name), bytes);
  const res = await recoverPartials(out, 'enr-z');
  assert.deepEqual(res.unsupported, [path.join(pdir, name)]);
  assert.equal(res.recovered + res.dropped, 0);
  assert.deepEqual(fs.readFileSync(path.join(pdir, name)), bytes);
  assertZstdRefused(() => new ChunkWriter({ outputDir: out, enricherId: 'w', compression: 'zstd' }));
}

describe('salvage at every byte position', () => {
  test('plain: keeps exactly the complete rows of any prefix', async () => {
    const { w, data } = await crashedWriter(tmp(), 'p', false, [3, 4, 5]);
    const ends: number[] = [];
    let off = HEADER_ROW.length;
    for (let i = 0; i < 12; i++) ends.push((off += row(i).length));
    assert.equal(data.length, off);
    for (let cut = 0; cut <= data.length; cut++) {
      const rows = ends.filter((e) => e <= cut).length;
      const s = salvagePlain(data.subarray(0, cut));
      assert.deepEqual(s, { keepBytes: rows === 0 ? 0 : ends[rows - 1]!, rows }, `cut ${cut}`);
    }
    await w.close();
  });

  test('gzip: keeps exactly the complete members; every flush point is one', async () => {
    const { w, data, points } = await crashedWriter(tmp(), 'g', true, [1, 2, 2, 5, 1]);
    for (let cut = 0; cut <= data.length; cut++) {
      const best = points.filter((p) => p.size <= cut).at(-1);
      const s = salvageGzip(data.subarray(0, cut));
      assert.ok(s.rows >= (best?.rows ?? 0), `cut ${cut}: ${s.rows} rows < durable ${best?.rows}`);
      if (best !== undefined && s.keepBytes === best.size) assert.equal(s.rows, best.rows);
      assert.ok(s.keepBytes <= cut);
    }
    for (const p of points)
      assert.deepEqual(salvageGzip(data.subarray(0, p.size)), { keepBytes: p.size, rows: p.rows });
    await w.close();
  });

  test('zstd: keeps exactly the complete frames; every flush point is one (Node without zstd: refused)', async () => {
    if (!NODE_HAS_ZSTD) {
      assertZstdRefused(() => new ChunkWriter({ outputDir: tmp(), enricherId: 'z', compression: 'zstd' }));
      assertZstdRefused(() => salvageZstd(Buffer.alloc(0)));
      return;
    }
    const { w, data, points } = await crashedWriter(tmp(), 'z', 'zstd', [1, 2, 2, 5, 1]);
    for (let cut = 0; cut <= data.length; cut++) {
      const best = points.filter((p) => p.size <= cut).at(-1);
      const s = salvageZstd(data.subarray(0, cut));
      assert.ok(s.rows >= (best?.rows ?? 0), `cut ${cut}: ${s.rows} rows < durable ${best?.rows}`);
      if (best !== undefined && s.keepBytes === best.size) assert.equal(s.rows, best.rows);
      assert.ok(s.keepBytes <= cut);
    }
    for (const p of points)
      assert.deepEqual(salvageZstd(data.subarray(0, p.size)), { keepBytes: p.size, rows: p.rows });
    // The frame walker finds exactly the flush points (one frame per flushed block here).
    const ends: number[] = [];
    for (let at = 0; at < data.length; at = zstdFrameEnd(data, at)) ends.push(zstdFrameEnd(data, at));
    for (const p of points) assert.ok(ends.includes(p.size), `flush point ${p.size} is a frame end`);
    // A zero-filled hole or a flipped byte inside a frame fails its checksum: cut there.
    const last = points.at(-2)!;
    const holed = Buffer.concat([data.subarray(0, last.size), Buffer.alloc(data.length - last.size)]);
    assert.deepEqual(salvageZstd(holed), { keepBytes: last.size, rows: last.rows });
    const flipped = Buffer.from(data);
    flipped[last.size + Math.floor((data.length - last.size) / 2)]! ^= 0x55;
    assert.deepEqual(salvageZstd(flipped), { keepBytes: last.size, rows: last.rows });
    assert.deepEqual(salvageZstd(Buffer.alloc(100)), { keepBytes: 0, rows: 0 });
    await w.close();
  });

  test('a CRLF inside quotes is not a row end; malformed or zero-filled tails are cut', () => {
    const good = buildRow(rowValues('a'));
    const quoted = buildRow(rowValues('b', { qname: 'x\r\ny' }));
    const head = Buffer.concat([Buffer.from(HEADER_ROW), good]);
    const inner = quoted.indexOf('\r\n') + 2;
    assert.equal(salvagePlain(Buffer.concat([head, quoted.subarray(0, inner)])).rows, 1);
    assert.equal(salvagePlain(Buffer.concat([head, quoted])).rows, 2);
    assert.equal(salvagePlain(Buffer.concat([head, Buffer.from('only,three,fields\r\n'), good])).rows, 1);
    // A page-sized hole followed by data that reached the disk: the hole ends the valid data.
    assert.equal(salvagePlain(Buffer.concat([head, Buffer.alloc(4096), good])).rows, 1);
    // A few NUL bytes inside a field are data.
    const nul = buildRow(rowValues('c', { identity: 'a\0b' }));
    assert.equal(salvagePlain(Buffer.concat([head, nul, good])).rows, 3);
    assert.equal(salvagePlain(Buffer.concat([head, Buffer.from('\n'), good])).rows, 1);
    assert.deepEqual(salvagePlain(Buffer.from(HEADER_ROW)), { keepBytes: 0, rows: 0 });
    assert.deepEqual(salvageGzip(Buffer.alloc(100)), { keepBytes: 0, rows: 0 });
  });
});

describe('recoverPartials', () => {
  for (const c of ['none', 'gzip', 'zstd'] as const) {
    test(`${c === 'none' ? 'plain' : c}: torn tails are cut, files published under their own final names`, async () => {
      if (c === 'zstd' && !NODE_HAS_ZSTD) return zstdPartialLeftAlone();
      const src = tmp();
      const { w, data, points, file } = await crashedWriter(src, 'enr-a', c, [2, 3, 4]);
      const name = path.basename(file);
      const cuts = [0, 40, points[0]!.size, points[1]!.size + 7, data.length - 1, data.length];
      for (const cut of cuts) {
        const out = tmp();
        const pdir = path.join(out, '_partial', 'enr-a');
        fs.mkdirSync(pdir, { recursive: true });
        fs.writeFileSync(path.join(pdir, name), data.subarray(0, cut));
        fs.writeFileSync(path.join(pdir, 'README.unknown'), 'left alone');
        const res = await recoverPartials(out, 'enr-a');
        const want = SALVAGE[c](data.subarray(0, cut));
        assert.equal(res.rows, want.rows, `cut ${cut}`);
        assert.equal(res.discardedBytes, want.rows === 0 ? cut : cut - want.keepBytes);
        assert.equal(res.recovered, want.rows === 0 ? 0 : 1);
        assert.equal(res.dropped, want.rows === 0 ? 1 : 0);
        const files = finalFiles(out).map((f) => path.join(out, f));
        assert.deepEqual(files, res.published);
        if (want.rows > 0) {
          assert.equal(path.basename(files[0]!), name.replace(/\.partial$/, ''));
          assert.match(files[0]!, /\/2\d{3}\/\d\d\/\d\d\/\d\d\/snowtap-enr-a-/);
          assert.deepEqual(await idsOf(files), prefixIds(want.rows));
        }
        assert.deepEqual(partials(out), []);
        assert.ok(fs.existsSync(path.join(pdir, 'README.unknown')));
      }
      await w.close();
    });
  }

  test("a live peer's directory is left alone, a dead peer's is recovered and removed", async () => {
    const out = tmp();
    const live = await crashedWriter(out, 'peer-live', false, [3]);
    const dead = new ChunkWriter({ outputDir: out, enricherId: 'peer-dead', gzip: true });
    for (let i = 0; i < 4; i++) dead.appendRow(row(i), 0, row(i).length);
    await dead.flush();
    const deadDir = path.join(out, '_partial', 'peer-dead');
    const old = Date.now() - 120_000;
    fs.writeFileSync(path.join(deadDir, 'owner.lock'), JSON.stringify({ heartbeatAt: old }));
    for (const f of fs.readdirSync(deadDir)) fs.utimesSync(path.join(deadDir, f), old / 1000, old / 1000);
    const liveBefore = fs.readFileSync(live.file);

    const res = await recoverPartials(out, 'me', { staleAfterMs: 60_000 });
    assert.equal(res.recovered, 1);
    assert.equal(res.rows, 4);
    assert.deepEqual(res.liveDirs, [path.join(out, '_partial', 'peer-live')]);
    assert.equal(fs.existsSync(deadDir), false);
    assert.deepEqual(fs.readFileSync(live.file), liveBefore);
    assert.deepEqual(await idsOf(res.published), prefixIds(4));

    // The live writer carries on and commits normally.
    await live.w.close();
    assert.equal(finalFiles(out).length, 2);
    // A directory without a lock whose files are old counts as dead as well.
    const orphan = path.join(out, '_partial', 'orphan');
    fs.mkdirSync(orphan);
    fs.writeFileSync(path.join(orphan, 'x.tmp'), '');
    fs.utimesSync(path.join(orphan, 'x.tmp'), old / 1000, old / 1000);
    const res2 = await recoverPartials(out, 'me', { staleAfterMs: 60_000, includeOthers: true });
    assert.deepEqual(res2.liveDirs, []);
    assert.equal(res2.recovered, 0);
    // dead.w was abandoned as a crashed process would be; its fd closes with the test process.
  });

  test('heartbeat() keeps a quiet writer alive in the eyes of its peers', async () => {
    const out = tmp();
    const quiet = await crashedWriter(out, 'quiet', false, [2]);
    const dir = path.join(out, '_partial', 'quiet');
    const old = Date.now() - 120_000;
    fs.writeFileSync(path.join(dir, 'owner.lock'), JSON.stringify({ heartbeatAt: old }));
    for (const f of fs.readdirSync(dir)) fs.utimesSync(path.join(dir, f), old / 1000, old / 1000);
    await quiet.w.heartbeat();
    const res = await recoverPartials(out, 'me');
    assert.deepEqual(res.liveDirs, [dir]);
    assert.equal(res.recovered, 0);
    const lock = JSON.parse(fs.readFileSync(path.join(dir, 'owner.lock'), 'utf8'));
    assert.equal(lock.enricherId, 'quiet');
    assert.equal(lock.incarnation, quiet.w.incarnation);
    await quiet.w.close();
    assert.equal(fs.existsSync(dir), false, 'close() releases the directory');
    await quiet.w.heartbeat();
    assert.equal(fs.existsSync(dir), false, 'no heartbeat after close()');
  });

  test('own directory is recovered even when its lock is fresh (the predecessor just died)', async () => {
    const out = tmp();
    const prev = await crashedWriter(out, 'same', false, [5]);
    const res = await recoverPartials(out, 'same', { includeOthers: false });
    assert.equal(res.rows, 5);
    assert.deepEqual(partials(out), []);
    const next = new ChunkWriter({ outputDir: out, enricherId: 'same', maxRows: 10 });
    next.appendRow(row(5), 0, row(5).length);
    await next.close();
    assert.deepEqual(await idsOf(finalFiles(out).map((f) => path.join(out, f))), prefixIds(6));
    void prev;
  });
});

describe('crash (SIGKILL) and recovery', () => {
  for (const c of ['none', 'gzip', 'zstd'] as const) {
    test(`${c === 'none' ? 'plain' : c}: every row reported durable is recovered, nothing torn`, async () => {
      if (c === 'zstd' && !NODE_HAS_ZSTD) return zstdPartialLeftAlone();
      const out = tmp();
      const child = spawn(
        process.execPath,
        [path.resolve(__dirname, '../support/output-crash-child.js'), out, 'crashy', c],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      let durable = 0;
      let lines = 0;
      await new Promise<void>((resolve, reject) => {
        let text = '';
        child.stdout.on('data', (b: Buffer) => {
          text += b.toString();
          for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n')) {
            durable = Number(text.slice(0, nl).split(' ')[1]);
            text = text.slice(nl + 1);
            if (++lines === 5) setTimeout(resolve, 150); // let it write unflushed rows for a while
          }
        });
        child.on('exit', (code) => reject(new Error(`child exited early with ${code}`)));
      });
      child.removeAllListeners('exit');
      const exited = new Promise((r) => child.on('exit', r));
      child.kill('SIGKILL');
      await exited;
      assert.equal(durable, 1500);

      const res = await recoverPartials(out, 'crashy');
      assert.equal(res.recovered, 1);
      assert.ok(res.rows >= durable, `${res.rows} rows recovered, ${durable} were durable`);
      const ids = await idsOf(res.published);
      assert.equal(ids.length, res.rows);
      assert.deepEqual(ids, prefixIds(res.rows));
      const [agg] = await duckdbQuery(res.published, 'select count(*)::INTEGER as n from $SOURCE');
      assert.deepEqual(agg, { n: res.rows });
    });
  }
});
