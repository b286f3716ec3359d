// `snowtap convert` end to end through the real executable: every fixture into CSV chunks
// (plain and gzip) with a policy, read back with fast-csv and loaded into DuckDB with the
// declared column types; bad input gives a clear error and keeps what was already read.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import {
  copyFileSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { duckdbQuery, finalFiles as finalRel, parseChunk } from '../support/output-rows';
import { FIXTURES_DIR } from '../support/peers';
import { NODE_HAS_ZSTD } from '../support/zstd';

const finalFiles = (dir: string) => finalRel(dir).map((f) => path.join(dir, f));

const run = promisify(execFile);
const MAIN = path.resolve(__dirname, '../../cli/main.js');
const FIXTURES = readdirSync(FIXTURES_DIR)
  .filter((f) => f.endsWith('.fstrm'))
  .map((f) => path.join(FIXTURES_DIR, f));

function tmp(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'snowtap-convert-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function snowtap(args: string[], env: NodeJS.ProcessEnv = {}) {
  try {
    const r = await run(process.execPath, [MAIN, ...args], {
      env: { ...process.env, ...env },
      maxBuffer: 1 << 24,
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const POLICY = {
  version: 'test-7',
  domains: [
    { suffix: 'tap.test', category: 'lab', action: 'log' },
    { suffix: 'w.tap.test', category: 'wildcard, "quoted"', action: 'allow' },
  ],
  networks: [
    { cidr: '127.0.0.0/8', tenant: 'loopback' },
    { cidr: '::1/128', tenant: 'loopback-v6' },
  ],
};

for (const gzip of [false, true]) {
  test(`convert all fixtures with a policy${gzip ? ' (gzip)' : ''}: fast-csv and DuckDB agree on every row`, async (t) => {
    const dir = tmp(t);
    const policyFile = path.join(dir, 'policy.json');
    writeFileSync(policyFile, JSON.stringify(POLICY));
    const out = path.join(dir, 'out');
    const args = [
      'convert',
      '--output-dir',
      out,
      '--policy-file',
      policyFile,
      '--rotate-max-rows',
      '5000',
      '--id',
      'conv-1',
    ];
    const r = await snowtap([...args, ...(gzip ? ['--gzip'] : []), ...FIXTURES]);
    assert.equal(r.code, 0, r.stderr);
    const m = /converted 19 file\(s\): (\d+) frames, (\d+) rows, (\d+) chunk/.exec(r.stdout);
    assert.ok(m, r.stdout);
    const [frames, rows, chunks] = [Number(m[1]), Number(m[2]), Number(m[3])];
    assert.equal(frames, rows, 'every fixture frame becomes a row');
    assert.equal(chunks, Math.ceil(rows / 5000));
    const files = finalFiles(out);
    assert.equal(files.length, chunks);
    for (const f of files)
      assert.match(f, gzip ? /\/snowtap-conv-1-\d{8}T\d{6}\.\d{3}Z-.+\.csv\.gz$/ : /\.csv$/);

    const parsed = (await Promise.all(files.map(parseChunk))).flat();
    assert.equal(parsed.length, rows);
    const ids = new Set(parsed.map((p) => p.record_id));
    assert.equal(ids.size, rows, 'record_id is unique');
    const wild = parsed.find((p) => p.qname?.endsWith('.w.tap.test'));
    assert.equal(wild?.policy_category, 'wildcard, "quoted"');
    assert.equal(wild?.matched_domain, 'w.tap.test');
    assert.equal(parsed.find((p) => p.qname === 'www.tap.test')?.policy_category, 'lab');
    assert.equal(parsed.find((p) => p.query_address === '127.0.0.1')?.tenant, 'loopback');
    assert.equal(parsed.find((p) => p.query_address === '::1')?.tenant, 'loopback-v6');
    // Names with escapes survive the CSV round trip (from the odd-names captures).
    assert.ok(
      parsed.some((p) => p.qname?.includes('\\.')),
      'a name with an escaped dot',
    );
    assert.ok(
      parsed.some((p) => /\\\d{3}/.test(p.qname ?? '')),
      'a name with \\DDD escapes',
    );

    const [agg] = await duckdbQuery(
      files,
      `SELECT count(*)::BIGINT AS n, count(DISTINCT record_id)::BIGINT AS ids, epoch_ns(min(event_time))::VARCHAR AS first_ns, min(event_time)::VARCHAR AS first,
       count(latency_us)::BIGINT AS with_latency, sum(message_size)::BIGINT AS bytes FROM $SOURCE`,
    );
    assert.equal(Number(agg!.n), rows);
    assert.equal(Number(agg!.ids), rows);
    // Nanoseconds survive: the earliest event_time matches the CSV text to the nanosecond.
    const firstCsv = parsed.map((p) => p.event_time!).sort()[0]!;
    const ns = BigInt(Date.parse(firstCsv.slice(0, 19) + 'Z')) * 1_000_000n + BigInt(firstCsv.slice(20, 29));
    assert.equal(String(agg!.first_ns), String(ns));
    assert.ok(Number(agg!.with_latency) > 0);
    const csvBytes = parsed.reduce((s, p) => s + Number(p.message_size || 0), 0);
    assert.equal(Number(agg!.bytes), csvBytes);
  });
}

test('convert: the same capture converted twice yields the same record_ids', async (t) => {
  const dir = tmp(t);
  const f = path.join(FIXTURES_DIR, 'knot-auth-unix.fstrm');
  const a = await snowtap(['convert', '--output-dir', path.join(dir, 'a'), f]);
  const b = await snowtap(['convert', '--output-dir', path.join(dir, 'b'), f]);
  assert.equal(a.code, 0);
  assert.equal(b.code, 0);
  const ids = async (d: string) =>
    (await Promise.all(finalFiles(d).map(parseChunk))).flat().map((r) => r.record_id);
  assert.deepEqual(await ids(path.join(dir, 'a')), await ids(path.join(dir, 'b')));
});

test('convert: a truncated capture keeps every complete frame and names the problem (exit 1)', async (t) => {
  const dir = tmp(t);
  const f = path.join(dir, 'cut.fstrm');
  copyFileSync(path.join(FIXTURES_DIR, 'unbound-local-unix.fstrm'), f);
  const size = readFileSync(f).length;
  truncateSync(f, size - 300);
  const r = await snowtap(['convert', '--output-dir', path.join(dir, 'out'), f]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /FSTRM_TRUNCATED/);
  assert.match(r.stderr, /cut\.fstrm/);
  const rows = (await Promise.all(finalFiles(path.join(dir, 'out')).map(parseChunk))).flat();
  assert.ok(rows.length >= 620 && rows.length < 628, `kept ${rows.length} complete frames`);
});

test('convert: usage errors exit 2 with a message naming the problem', async (t) => {
  const dir = tmp(t);
  let r = await snowtap(['convert']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /at least one capture FILE/);
  r = await snowtap(['convert', '--rotate-max-rowz', '3', 'x']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown option '--rotate-max-rowz'/);
  const bad = path.join(dir, 'bad-policy.json');
  writeFileSync(bad, JSON.stringify({ version: 'x', domains: [{ suffix: 7 }], networks: [] }));
  r = await snowtap(['convert', '--policy-file', bad, path.join(FIXTURES_DIR, 'kdig-tool-file.fstrm')]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /domains\[0\]\.suffix/);
  r = await snowtap(['convert', '--output-dir', path.join(dir, 'o'), path.join(dir, 'missing.fstrm')]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /missing\.fstrm/);
  r = await snowtap(['convert', '--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /--rotate-max-rows N/);
  assert.match(r.stdout, /SNOWTAP_ROTATE_MAX_ROWS/);
});

test('convert: a file that is not a dnstap capture is reported, other files still convert', async (t) => {
  const dir = tmp(t);
  const junk = path.join(dir, 'junk.fstrm');
  writeFileSync(junk, Buffer.from('this is not frame streams at all'));
  const r = await snowtap([
    'convert',
    '--output-dir',
    path.join(dir, 'out'),
    junk,
    path.join(FIXTURES_DIR, 'kdig-tool-file.fstrm'),
  ]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /junk\.fstrm/);
  assert.match(r.stdout, /12 rows/);
});

test('convert --compression zstd from a flag, SNOWTAP_COMPRESSION or the config file: .csv.zst chunks fast-csv and DuckDB read (Node without zstd: exit 2 naming the option and the version)', async (t) => {
  const dir = tmp(t);
  const f = path.join(FIXTURES_DIR, 'knot-auth-unix.fstrm');
  const config = path.join(dir, 'convert.yaml');
  writeFileSync(config, 'compression: zstd\n');
  const ways: [string, string[], NodeJS.ProcessEnv][] = [
    ['flag', ['--compression', 'zstd'], {}],
    ['env', [], { SNOWTAP_COMPRESSION: 'zstd' }],
    ['config', ['--config', config], {}],
  ];
  for (const [way, args, env] of ways) {
    const out = path.join(dir, way);
    const r = await snowtap(['convert', '--output-dir', out, ...args, f], env);
    if (!NODE_HAS_ZSTD) {
      assert.equal(r.code, 2, `${way}: ${r.stderr}`);
      assert.match(r.stderr, /^snowtap convert: --compression zstd needs Node\.js >= 22\.15/, way);
      assert.match(r.stderr, new RegExp(`this is Node\\.js ${process.versions.node.replace(/\./g, '\\.')}`));
      assert.deepEqual(finalFiles(out), [], 'nothing written');
      continue;
    }
    assert.equal(r.code, 0, `${way}: ${r.stderr}`);
    const files = finalFiles(out);
    assert.equal(files.length, 1);
    assert.match(files[0]!, /\/snowtap-.+-\d{6}\.csv\.zst$/);
    const rows = await parseChunk(files[0]!);
    assert.match(r.stdout, new RegExp(`: ${rows.length} frames, ${rows.length} rows`));
    const [agg] = await duckdbQuery(files, 'SELECT count(*)::INTEGER AS n FROM $SOURCE');
    assert.deepEqual(agg, { n: rows.length });
  }
});

test('convert: --gzip is an alias of --compression gzip; the two contradicting each other exit 2', async (t) => {
  const dir = tmp(t);
  const f = path.join(FIXTURES_DIR, 'knot-auth-unix.fstrm');
  for (const [way, args] of [
    ['alias', ['--gzip']],
    ['both', ['--gzip', '--compression', 'gzip']],
  ] as const) {
    const r = await snowtap(['convert', '--output-dir', path.join(dir, way), ...args, f]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(finalFiles(path.join(dir, way))[0]!, /\.csv\.gz$/, way);
  }
  const bad = await snowtap([
    'convert',
    '--output-dir',
    path.join(dir, 'x'),
    '--gzip',
    '--compression',
    'none',
    f,
  ]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--gzip \(true\) contradicts --compression none/);
  const unknown = await snowtap(['convert', '--output-dir', path.join(dir, 'x'), '--compression', 'lz4', f]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /--compression: must be one of none\|gzip\|zstd, got 'lz4'/);
});
