// --partition-by tenant (enricher/output/partition.ts): the directory-name escaping (safe,
// reversible, bounded), the lanes' LRU bound and its publication order, the token bucket that
// bounds tenant switches, flush() covering every touched tenant chunk, and recovery of partial
// chunks in every tenant directory.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, test } from 'node:test';
import type { CommitInfo } from '../../enricher/output/chunk-sink';
import {
  checkPartitionOptions,
  EMPTY_TENANT,
  escapeTenant,
  MAX_TENANT_DIR_VALUE,
  NO_TENANT,
  PartitionedWriter,
  type PartitionedWriterOptions,
  parseTenantDir,
  tenantDir,
} from '../../enricher/output/partition';
import { recoverPartials } from '../../enricher/output/recovery';
import { SimClock } from '../../loadtest/sim-clock';
import { finalFiles, listFiles, parseChunk, row } from '../support/output-rows';

const T0 = Date.UTC(2026, 10, 22, 3, 18, 39, 123);
const dirs: string[] = [];

function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'tenant-out-'));
  dirs.push(d);
  return d;
}

afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const HOSTILE = [
  'acme',
  'a/b',
  '..',
  '.',
  '../../etc',
  'k=v',
  '100%',
  '%41',
  'tenant=x',
  '~',
  'Zürich 東京 🦀',
  'ctl\u0000\u0001\r\n\t\u007f',
  '\ud800 lone surrogate',
  '\udc00',
  '_leading',
  NO_TENANT,
  EMPTY_TENANT,
  '__none__x',
  ' ',
  'x'.repeat(66),
  'é'.repeat(33),
  'y'.repeat(200),
];

describe('tenant directory names', () => {
  test('safe: one path component of letters, digits, - . _ % = ~ only, never a reserved value', () => {
    for (const t of HOSTILE) {
      const d = tenantDir(t);
      assert.match(d, /^tenant=[A-Za-z0-9._%~-]+$/, JSON.stringify(t));
      assert.ok(Buffer.byteLength(d) <= 'tenant='.length + MAX_TENANT_DIR_VALUE, d);
      assert.notEqual(escapeTenant(t), NO_TENANT, JSON.stringify(t));
      assert.notEqual(escapeTenant(t), EMPTY_TENANT, JSON.stringify(t));
      // Joined under an output directory it stays inside it.
      const abs = path.join('/out', d, '2026/11/22/03');
      assert.ok(abs.startsWith('/out/tenant='), abs);
      assert.equal(path.dirname(path.dirname(path.dirname(path.dirname(abs)))), path.join('/out', d));
    }
  });

  test('reversible: parseTenantDir gives back every name that fits, null and "" included', () => {
    for (const t of [...HOSTILE, null, '']) {
      const back = parseTenantDir(tenantDir(t));
      assert.deepEqual(back, { tenant: t, complete: true }, JSON.stringify(t));
    }
    assert.equal(tenantDir(null), 'tenant=__none__');
    assert.equal(tenantDir(''), 'tenant=__empty__');
    assert.equal(tenantDir('a/b'), 'tenant=a%2Fb');
    assert.equal(tenantDir('_x_y'), 'tenant=%5Fx_y');
    assert.equal(tenantDir('é'), 'tenant=%C3%A9');
  });

  test('distinct: different names never share a directory (1 kB names, common prefixes)', () => {
    const names = [
      ...HOSTILE,
      'x'.repeat(1024),
      `${'x'.repeat(1023)}y`,
      'x'.repeat(1023),
      '/'.repeat(1024),
      '東'.repeat(341),
      `${'/'.repeat(70)}a`,
      `${'/'.repeat(70)}b`,
    ];
    const seen = new Map<string, string>();
    for (const t of names) {
      const d = tenantDir(t);
      assert.ok(!seen.has(d), `${JSON.stringify(t)} and ${JSON.stringify(seen.get(d))} share ${d}`);
      seen.set(d, t);
    }
  });

  test('over-long: cut to a readable prefix + ~ + 128-bit hash, at most 255 bytes, marked incomplete', () => {
    const t = `acme-${'/'.repeat(1019)}`;
    const d = tenantDir(t);
    assert.ok(d.length <= 'tenant='.length + MAX_TENANT_DIR_VALUE && d.length >= 'tenant='.length + 160, d);
    assert.ok(Buffer.byteLength(d) <= 255);
    assert.match(d, /^tenant=acme-(%2F)+~[0-9a-f]{32}$/);
    const back = parseTenantDir(d)!;
    assert.equal(back.complete, false);
    assert.ok(t.startsWith(back.tenant!), 'the prefix kept is the name’s');
    assert.equal(tenantDir(t), d, 'stable');
  });

  test('foreign names are not tenant directories', () => {
    for (const n of [
      '2026',
      '_partial',
      'tenant',
      'tenant=',
      'tenant=a/b',
      'tenant=%2',
      'tenant=%zz',
      'tenant=_x',
      'x=1',
    ])
      assert.equal(parseTenantDir(n), null, n);
  });
});

describe('options', () => {
  test('bad values are named', () => {
    assert.throws(() => checkPartitionOptions({ maxOpenTenants: 0 }), /maxOpenTenants must be an integer/);
    assert.throws(() => checkPartitionOptions({ tenantChunkRate: 0 }), /tenantChunkRate must be a number/);
    assert.throws(
      () => checkPartitionOptions({ partitionBy: 'zone' as never }),
      /partitionBy must be one of none\|tenant/,
    );
  });
});

interface Harness {
  dir: string;
  w: PartitionedWriter;
  commits: CommitInfo[];
  clock: { t: number };
}

function harness(opts: Partial<PartitionedWriterOptions> = {}): Harness {
  const dir = tmp();
  const commits: CommitInfo[] = [];
  const clock = { t: T0 };
  const w = new PartitionedWriter({
    outputDir: dir,
    enricherId: 'enr-0',
    maxAgeMs: 60_000,
    blockBytes: 16 * 1024,
    now: () => clock.t,
    onCommit: (c) => commits.push(c),
    maxOpenTenants: 4,
    tenantChunkRate: 1000,
    ...opts,
  });
  return { dir, w, commits, clock };
}

/** Tenant of row i in the tests: t<i mod n>. */
function put(w: PartitionedWriter, tenant: string | null, i: number): boolean {
  const r = row(i, { tenant: tenant ?? '' });
  return w.appendRow(tenant, r, 0, r.length);
}

async function rowsByDir(dir: string): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (const f of finalFiles(dir)) {
    const top = f.split('/')[0]!;
    const ids = (await parseChunk(path.join(dir, f))).map((r) => `${r.tenant}:${r.record_id}`);
    out.set(top, [...(out.get(top) ?? []), ...ids]);
  }
  return out;
}

/** Advances simulated time in 5 ms steps until `p` settles (real file I/O runs in between). */
async function driveUntil(clock: SimClock, p: Promise<unknown>): Promise<void> {
  let settled = false;
  const done = () => {
    settled = true;
  };
  p.then(done, done);
  while (!settled) await clock.run(clock.now() + 5);
  await p;
}

describe('PartitionedWriter', () => {
  test('each tenant’s rows in its own tree, Hive-style path, rows without tenant under __none__', async () => {
    const h = harness();
    const tenants = ['a', 'b/c', null, 'Zürich'];
    for (let i = 0; i < 40; i++) put(h.w, tenants[i % 4]!, i);
    await h.w.close();
    for (const f of finalFiles(h.dir))
      assert.match(
        f,
        /^tenant=[^/]+\/2026\/11\/22\/03\/snowtap-enr-0-20261122T031839\.123Z-[0-9a-f]{8}-\d{6}\.csv$/,
      );
    const by = await rowsByDir(h.dir);
    assert.deepEqual([...by.keys()].sort(), [
      'tenant=Z%C3%BCrich',
      'tenant=__none__',
      'tenant=a',
      'tenant=b%2Fc',
    ]);
    for (const [d, ids] of by) {
      const t = parseTenantDir(d)!.tenant;
      assert.equal(ids.length, 10);
      for (const id of ids) assert.ok(id.startsWith(`${t ?? ''}:`), `${id} in ${d}`);
    }
    // Names are unique across lanes (one sequence per writer).
    const names = finalFiles(h.dir).map((f) => path.basename(f));
    assert.equal(new Set(names).size, names.length);
    assert.deepEqual(
      listFiles(h.dir).filter((f) => f.startsWith('_partial')),
      [],
      'partial directory released',
    );
  });

  test('LRU bound: the least recently used tenant chunk is published first, counted; nothing lost', async () => {
    const h = harness({ maxOpenTenants: 2 });
    put(h.w, 'a', 0);
    put(h.w, 'b', 1);
    put(h.w, 'a', 2); // a is now the most recently used
    put(h.w, 'c', 3); // evicts b
    await h.w.flush();
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(h.w.partition.evictions, 1);
    assert.equal(h.w.partition.openTenants, 2);
    assert.equal(h.commits.length, 1);
    assert.match(h.commits[0]!.path, /\/tenant=b\//);
    put(h.w, 'd', 4); // evicts a
    await h.w.flush();
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(h.w.partition.evictions, 2);
    assert.match(h.commits[1]!.path, /\/tenant=a\//);
    assert.equal(h.commits[1]!.rows, 2);
    await h.w.close();
    const by = await rowsByDir(h.dir);
    assert.deepEqual([...by.values()].flat().sort(), [
      'a:r-00000000',
      'a:r-00000002',
      'b:r-00000001',
      'c:r-00000003',
      'd:r-00000004',
    ]);
  });

  test('many tenants through a small bound: every row once, in its tenant’s tree', async () => {
    const h = harness({ maxOpenTenants: 3 });
    const N = 150;
    for (let i = 0; i < N; i++) {
      const t = `t${(i * 3) % 7}`;
      if (!put(h.w, t, i)) await h.w.whenDrained();
      if (i % 25 === 24) await h.w.flush();
    }
    await h.w.close();
    const by = await rowsByDir(h.dir);
    const all = [...by.values()].flat();
    assert.equal(all.length, N);
    assert.equal(new Set(all).size, N);
    for (const [d, ids] of by)
      for (const id of ids) assert.ok(id.startsWith(`${parseTenantDir(d)!.tenant}:`));
    assert.ok(h.w.partition.evictions > 50, `evictions ${h.w.partition.evictions}`);
    assert.equal(h.commits.length, finalFiles(h.dir).length);
  });

  test('tenant switches beyond --tenant-chunk-rate make the writer full until tokens refill', async () => {
    // Simulated time: the throttle's timer fires when the test advances the clock.
    const clock = new SimClock();
    const dir = tmp();
    const w = new PartitionedWriter({
      throttleClock: clock,
      outputDir: dir,
      enricherId: 'enr-0',
      blockBytes: 16 * 1024,
      maxOpenTenants: 2,
      tenantChunkRate: 20, // one switch per 50 ms
    });
    const t0 = clock.now();
    let paused = 0;
    const SWITCHES = 10;
    for (let i = 0; i < SWITCHES; i++) {
      const r = row(i);
      if (!w.appendRow(`t${i}`, r, 0, r.length)) {
        paused++;
        await driveUntil(clock, w.whenDrained());
      }
    }
    const ms = clock.now() - t0;
    // 2 tokens at start, then 20/s: each of the other 8 switches waits 50 ms for its token.
    assert.equal(paused, 8);
    assert.equal(ms, 8 * 50);
    assert.equal(w.partition.throttled, paused);
    await w.close();
    assert.equal((await rowsByDir(dir)).size, SWITCHES);
  });

  test('more tenants than the bound under load: files stay within N + R x seconds (+ the N lanes closed at the end), nothing lost', async () => {
    const dir = tmp();
    const commits: CommitInfo[] = [];
    const N = 3;
    const R = 40;
    const clock = new SimClock();
    const w = new PartitionedWriter({
      throttleClock: clock,
      outputDir: dir,
      enricherId: 'enr-0',
      blockBytes: 16 * 1024,
      maxOpenTenants: N,
      tenantChunkRate: R,
      onCommit: (c) => commits.push(c),
    });
    const t0 = clock.now();
    let i = 0;
    // 12 tenants interleaved, one row each in turn, as fast as the writer lets us, for 600 ms of
    // simulated time (it moves only while the writer holds the input).
    while (clock.now() - t0 < 600) {
      for (let k = 0; k < 50; k++, i++) {
        const r = row(i, { tenant: `t${i % 12}` });
        if (!w.appendRow(`t${i % 12}`, r, 0, r.length)) await driveUntil(clock, w.whenDrained());
      }
      await w.flush();
    }
    const seconds = (clock.now() - t0) / 1000;
    await w.close();
    const bound = N + R * seconds + N;
    assert.ok(commits.length <= bound + 1, `${commits.length} files in ${seconds} s, bound ${bound}`);
    assert.ok(w.partition.throttled > 0, 'the bucket ran dry and paused the input');
    const by = await rowsByDir(dir);
    const all = [...by.values()].flat();
    assert.equal(all.length, i, 'every row written once');
    assert.equal(new Set(all).size, i);
    for (const [d, ids] of by)
      for (const id of ids) assert.ok(id.startsWith(`${parseTenantDir(d)!.tenant}:`));
  });

  test('flush() makes every touched tenant chunk durable: one sync covers all dirty files', async () => {
    const h = harness({ maxOpenTenants: 8 });
    for (let i = 0; i < 16; i++) put(h.w, `t${i % 8}`, i);
    await h.w.flush();
    const s = h.w.stats();
    assert.equal(s.durableRows, 16);
    assert.equal(s.appendedRows, 16);
    assert.ok(s.syncs >= 8, `syncs ${s.syncs}`);
    // Every touched tenant has a partial file holding its rows.
    const partials = listFiles(h.dir).filter((f) => f.endsWith('.partial'));
    assert.equal(partials.length, 8);
    for (const p of partials) {
      const text = fs.readFileSync(path.join(h.dir, p), 'utf8');
      assert.equal(text.split('\r\n').length - 2, 2, p);
    }
    await h.w.close();
  });

  test('recovery finds the partial chunks of every tenant directory and publishes them in that tenant’s tree', async () => {
    const h = harness({ maxOpenTenants: 16 });
    const tenants = ['a', 'b/c', null, '..', 'x'.repeat(1024)];
    for (let i = 0; i < 50; i++) put(h.w, tenants[i % tenants.length]!, i);
    await h.w.flush();
    // Crash: the writer is abandoned with its partial files (a torn tail added to one).
    const partials = listFiles(h.dir).filter((f) => f.endsWith('.partial'));
    assert.equal(partials.length, tenants.length);
    fs.appendFileSync(path.join(h.dir, partials[0]!), 'r-torn,2026-');
    const rec = await recoverPartials(h.dir, 'enr-0');
    assert.equal(rec.recovered, tenants.length);
    assert.equal(rec.rows, 50);
    const by = await rowsByDir(h.dir);
    assert.equal(by.size, tenants.length);
    for (const [d, ids] of by) {
      const p = parseTenantDir(d)!;
      assert.equal(ids.length, 10);
      for (const id of ids) assert.ok(id.startsWith(`${p.tenant ?? ''}`), `${id} in ${d}`);
    }
    assert.deepEqual(listFiles(path.join(h.dir, '_partial', 'enr-0')), ['owner.lock']);
    assert.deepEqual(
      fs.readdirSync(path.join(h.dir, '_partial', 'enr-0')),
      ['owner.lock'],
      'tenant sub-directories removed',
    );
  });
});
