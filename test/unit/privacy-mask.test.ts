// Client address minimisation (issue 9 step 1, enricher and convert): --mask-client-ipv4,
// --mask-client-ipv6, --drop-ecs, and --columns. The scan: a capture with client addresses
// in every place a row can carry one (query_address of client-side types, IPv4-mapped IPv6
// sockets, ECS, a policy CLIENT_IP value) is converted with masking on and gzip; no original
// client address appears anywhere in the decompressed chunks in any textual form (dotted,
// IPv4-mapped IPv6 in dotted and hex form, compressed and expanded IPv6, hex bytes).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import zlib from 'node:zlib';
import { ENRICHER_OPTIONS } from '../../cli/enricher';
import { coerce, parseCommand } from '../../cli/options';
import { outputOptions, rowOptions } from '../../cli/shared';
import { CONVERT_OPTIONS } from '../../cli/specs';
import { silentLogger } from '../../common/log';
import { maskedNetworkText } from '../../enricher/aggregates/service';
import { convertFiles } from '../../enricher/convert';
import { COLUMNS, parseColumnList } from '../../enricher/output/csv';
import { pipeSqlForColumns } from '../../enricher/output/sql-variant';
import { projectRow } from '../../enricher/pipeline/pipeline';
import {
  ClientMask,
  PRIVACY_DEFAULTS,
  PRIVACY_RANGES,
  queryAddressIsClient,
} from '../../enricher/pipeline/privacy';
import { keyFromBytes, Pseudonymizer } from '../../enricher/pipeline/pseudonym';
import { maskedCidrText } from '../../enricher/policy/cidr';
import { loadPolicyBytes } from '../../enricher/policy/index';
import { dnstapFrame, encodeChunk, type FrameSpec } from '../support/chunk-builder';
import { file as fstrmFile } from '../support/fstrm-builder';
import { parseCsvText } from '../support/output-rows';
import { forms, frames, MAPPED, V4, V4_OTHER, V6 } from '../support/privacy-scan';
import { castField, optionsFromFileFormat, readSnowflakeCsv } from '../support/snowflake-csv';
import {
  findStatement,
  parseCreateTable,
  parseFileFormat,
  parsePipe,
  readSqlTree,
} from '../support/snowflake-sql';

const root = fs.mkdtempSync(path.join(tmpdir(), 'snowtap-privacy-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

async function convert(name: string, rows: Parameters<typeof rowOptions>[0] | null, columns?: string[]) {
  const capture = path.join(root, `${name}.fstrm`);
  fs.writeFileSync(capture, fstrmFile(frames().map(dnstapFrame)));
  const policy = await loadPolicyBytes(
    Buffer.from(
      JSON.stringify({
        version: 'p',
        domains: [],
        networks: [
          { cidr: '192.0.2.77/32', tenant: 'exact-v4' },
          { cidr: '2001:db8:1234:5678:9abc:def0:1122:3344/128', tenant: 'exact-v6' },
        ],
      }),
    ),
    { source: 'test' },
  );
  const specs = new Map(ENRICHER_OPTIONS.map((s) => [s.name, s]));
  const o: Record<string, unknown> = {};
  for (const s of ENRICHER_OPTIONS) if (s.default !== undefined) o[s.name] = s.default;
  for (const [k, v] of Object.entries(rows ?? {})) o[k] = coerce(specs.get(k)!, v, `--${k}`);
  if (columns) o.columns = columns;
  const dir = path.join(root, name);
  const s = await convertFiles({
    files: [capture],
    output: { ...outputOptions(o), outputDir: dir, enricherId: 'privacy', compression: 'gzip' },
    policy,
    rows: rowOptions(o),
    log: silentLogger(),
  });
  const text = s.chunkPaths.map((f) => zlib.gunzipSync(fs.readFileSync(f)).toString('utf8')).join('');
  return { text, rows: await parseCsvText(text) };
}

describe('masking client addresses', () => {
  test('scan: no original client address in any textual form in the decompressed chunks (24 / 56, ECS masked)', async () => {
    const { text, rows } = await convert('masked', { 'mask-client-ipv4': '24', 'mask-client-ipv6': '56' });
    for (const a of [V4, V6, MAPPED]) {
      for (const f of forms(a))
        assert.ok(!text.toLowerCase().includes(f.toLowerCase()), `${f} found in the chunks`);
    }
    // The masked forms are there, the tenant lookups saw the real address, the resolver's own
    // address and the responders are kept.
    const byQname = (q: string) => rows.filter((r) => r.qname === q);
    for (const r of byQname('a')) {
      assert.equal(r.query_address, '192.0.2.0');
      assert.equal(r.tenant, 'exact-v4', 'policy lookup before masking');
      assert.equal(r.response_address, '10.53.53.53');
    }
    for (const r of byQname('b')) {
      assert.equal(r.query_address, '2001:db8:1234:5600::');
      assert.equal(r.tenant, 'exact-v6');
    }
    for (const r of byQname('c'))
      assert.equal(r.query_address, '::ffff:203.0.113.0', 'IPv4-mapped: the IPv4 mask');
    for (const r of byQname('r'))
      assert.equal(r.query_address, '10.99.98.97', 'RESOLVER_*/FORWARDER_*: the resolver itself');
    assert.deepEqual(
      ['e', 'f', 'g'].map((q) => byQname(q)[0]!.ecs),
      ['192.0.2.0/24', '2001:db8:1234:5600::/56', '::ffff:203.0.113.0/120'],
    );
    assert.deepEqual(
      byQname('p').map((r) => r.dnstap_policy_value),
      ['192.0.2.0', '2001:db8:1234:5600::', ''],
    );
  });

  test('unmasked (the defaults): the same capture does carry the addresses (the scan can see them)', async () => {
    const { text } = await convert('plain', null);
    for (const a of [V4, V6, MAPPED])
      assert.ok(
        forms(a).some((f) => text.includes(f)),
        `${forms(a)[0]} present`,
      );
  });

  test('--drop-ecs leaves ecs empty; mask 0 keeps no client bit', async () => {
    const { rows } = await convert('drop', {
      'drop-ecs': 'true',
      'mask-client-ipv4': '0',
      'mask-client-ipv6': '0',
    });
    assert.ok(rows.every((r) => r.ecs === ''));
    assert.deepEqual(
      [...new Set(rows.filter((r) => ['a', 'b', 'c'].includes(r.qname!)).map((r) => r.query_address))].sort(),
      ['0.0.0.0', '::', '::ffff:0.0.0.0'],
    );
  });

  test('ClientMask: prefix bits at every length, v4-mapped gets the IPv4 mask, other lengths zeroed', () => {
    const m = new ClientMask(20, 44);
    const out = Buffer.alloc(16);
    m.apply(Buffer.from([255, 255, 255, 255]), 0, 4, out);
    assert.deepEqual([...out.subarray(0, 4)], [255, 255, 240, 0]);
    m.apply(Buffer.alloc(16, 0xff), 0, 16, out);
    assert.equal(out.toString('hex'), 'fffffffffff000000000000000000000');
    m.apply(Buffer.from(MAPPED), 0, 16, out);
    assert.equal(out.toString('hex'), '00000000000000000000ffffcb007000');
    m.apply(Buffer.from([1, 2, 3]), 0, 3, out);
    assert.deepEqual([...out.subarray(0, 3)], [0, 0, 0]);
    assert.throws(() => new ClientMask(33, 0), /maskClientIpv4/);
    assert.equal(ClientMask.from({}), null);
    assert.deepEqual([3, 4, 7, 8].map(queryAddressIsClient), [false, false, false, false]);
    assert.deepEqual([1, 2, 5, 6, 9, 10, 11, 12, 13, 14, 99].map(queryAddressIsClient), Array(11).fill(true));
  });
});

describe('options: flags, env, config file, library defaults', () => {
  test('enricher and convert: defaults and ranges from the library; env and config keys; flags win', () => {
    for (const table of [ENRICHER_OPTIONS, CONVERT_OPTIONS]) {
      const s = (n: string) => table.find((x) => x.name === n)!;
      assert.deepEqual(
        [s('mask-client-ipv4').default, s('mask-client-ipv4').min, s('mask-client-ipv4').max],
        [
          PRIVACY_DEFAULTS.maskClientIpv4,
          PRIVACY_RANGES.maskClientIpv4.min,
          PRIVACY_RANGES.maskClientIpv4.max,
        ],
      );
      assert.deepEqual(
        [s('mask-client-ipv6').default, s('mask-client-ipv6').max],
        [PRIVACY_DEFAULTS.maskClientIpv6, PRIVACY_RANGES.maskClientIpv6.max],
      );
      assert.equal(s('drop-ecs').default, false);
      assert.equal(s('columns').default, undefined);
    }
    const cfg = path.join(root, 'cfg.yaml');
    fs.writeFileSync(cfg, 'mask-client-ipv6: 48\ncolumns: [record_id, qname]\ndrop-ecs: true\n');
    const env = { SNOWTAP_MASK_CLIENT_IPV4: '16', SNOWTAP_MASK_CLIENT_IPV6: '64' };
    const cmd = parseCommand(['--config', cfg, '--mask-client-ipv4', '8'], CONVERT_OPTIONS, env, {
      positionals: true,
    });
    assert.deepEqual(rowOptions(cmd.options), {
      maskClientIpv4: 8,
      maskClientIpv6: 64,
      dropEcs: true,
      columns: ['record_id', 'qname'],
    });
    assert.throws(() => parseCommand(['--mask-client-ipv4', '33'], CONVERT_OPTIONS, {}), {
      code: 'SNOWTAP_USAGE',
    });
  });
});

describe('--columns', () => {
  test('a selection in schema order: header and rows follow, quoted fields kept whole', async () => {
    const cols = [
      'record_id',
      'query_address',
      'qname',
      'tenant',
      'answers',
      'dnstap_policy_type',
      'query_zone',
    ];
    const { text, rows } = await convert('cols', { 'mask-client-ipv4': '24' }, cols);
    assert.ok(text.startsWith(`${cols.join(',')}\r\n`));
    assert.deepEqual(Object.keys(rows[0]!), cols);
    assert.equal(rows.length, frames().length);
    assert.equal(rows[0]!.query_address, '192.0.2.0');
    assert.equal(rows.at(-1)!.dnstap_policy_type, 'RPZ');
  });

  test('the shipped pipe for a selection (sql-variant.ts) loads a --columns chunk into the shipped table', async () => {
    const cols = ['record_id', 'event_time', 'query_address', 'qname', 'edns_do', 'answers'];
    const { text } = await convert('cols-sql', { 'mask-client-ipv4': '24' }, cols);
    const sqlDir = path.join(__dirname, '..', '..', '..', 'sql');
    const all = readSqlTree(sqlDir);
    const shipped = fs.readFileSync(path.join(sqlDir, 'schema', '03-stage-and-pipe.sql'), 'utf8');
    const pipe = parsePipe(pipeSqlForColumns(shipped, parseColumnList(cols)));
    assert.deepEqual(pipe.columns, [...cols, 'source_file', 'source_row', 'loaded_at']);
    assert.deepEqual(pipe.select.slice(0, cols.length), ['$1', '$2', '$3', '$4', '$5', '$6']);
    const table = parseCreateTable(
      findStatement(all, /^CREATE (TRANSIENT )?TABLE (IF NOT EXISTS )?DNS_QUERIES_RAW\b/i)[0]!.text,
    );
    for (const c of pipe.columns)
      assert.ok(
        table.columns.some((t) => t.name === c),
        `${c} is a table column`,
      );
    const [ff] = findStatement(all, /^CREATE (OR ALTER )?FILE FORMAT SNOWTAP_CSV\b/i);
    const format = optionsFromFileFormat(parseFileFormat(ff!.text).options);
    const read = readSnowflakeCsv(
      Buffer.from(text),
      { ...format, errorOnColumnCountMismatch: true },
      cols.length,
    );
    assert.deepEqual(read.rejected, []);
    assert.equal(read.rows.length, frames().length);
    for (const r of read.rows)
      cols.forEach((c, k) => {
        const type = table.columns.find((t) => t.name === c)!.type;
        assert.ok(!(castField(r[k] ?? null, type, format) instanceof Error), `${c}: ${r[k]}`);
      });
    assert.equal(read.rows[0]![2], '192.0.2.0');
  });

  test('projectRow: quoted fields with commas, doubled quotes and CRLF inside stay whole', () => {
    const row = Buffer.from('id/1/0,"a,b","say ""x,y""",,"line\r\nbreak",last\r\n');
    const dst = Buffer.alloc(row.length);
    const keep = (cols: number[]) => {
      const k = new Uint8Array(6);
      for (const c of cols) k[c] = 1;
      return dst.toString('utf8', 0, projectRow(row, row.length, k, dst, 0));
    };
    assert.equal(keep([0, 2]), 'id/1/0,"say ""x,y"""\r\n');
    assert.equal(keep([1, 3, 4]), '"a,b",,"line\r\nbreak"\r\n');
    assert.equal(keep([5]), 'last\r\n');
    assert.equal(keep([0, 1, 2, 3, 4, 5]), row.toString());
  });

  test('projected rows equal the full rows restricted to the selection (quotes, commas, CR/LF, escapes)', async () => {
    const tricky = ['a,b', 'say "x"', 'cr\rlf\n', '\\', '""', ',', 'plain'];
    const specs: FrameSpec[] = tricky.map((s, i) => ({
      type: 6,
      identity: Buffer.from(`id ${s}`),
      qname: [Buffer.from(s), 'example'],
      policy: { type: s, rule: Buffer.from(s), match: 9, value: Buffer.from(s) },
      answers: {
        count: 1,
        bytes: Buffer.from([
          0xc0,
          12,
          0,
          16,
          0,
          1,
          0,
          0,
          0,
          60,
          0,
          s.length + 1,
          s.length,
          ...Buffer.from(s),
        ]),
      },
      queryTime: [1_800_000_000 + i, 0],
    }));
    const frames = specs.map(dnstapFrame);
    const selection = COLUMNS.filter((c, i) => c === 'record_id' || i % 2 === 1);
    const full = encodeChunk(frames).chunk.toString('utf8');
    const projected = encodeChunk(frames, { encoder: { columns: selection } }).chunk.toString('utf8');
    const fullRows = await parseCsvText(full);
    const body = projected.slice(projected.indexOf('\r\n') + 2);
    const projRows = await parseCsvText(`${selection.join(',')}\r\n${body}`);
    assert.equal(projRows.length, tricky.length);
    projRows.forEach((r, i) => {
      assert.deepEqual(r, Object.fromEntries(selection.map((c) => [c, fullRows[i]![c]])), `row ${i}`);
    });
    assert.ok(fullRows.some((r) => r.answers!.includes('"')) && fullRows.some((r) => r.qname!.includes(',')));
  });

  test('validation names the bad column', () => {
    assert.deepEqual(parseColumnList(['record_id', 'qname']), ['record_id', 'qname']);
    assert.throws(() => parseColumnList(['record_id', 'qnme']), /unknown column 'qnme'/);
    assert.throws(() => parseColumnList(['record_id', 'Query-Address']), /use 'query_address'/);
    assert.throws(() => parseColumnList(['qname', 'record_id']), /'record_id' must come before 'qname'/);
    assert.throws(() => parseColumnList(['record_id', 'qname', 'qname']), /'qname' is listed twice/);
    assert.throws(() => parseColumnList(['qname']), /'record_id' is required/);
    assert.throws(() => parseColumnList([]), /empty/);
    assert.throws(() => rowOptions({ columns: ['record_id', 'nope'] }), {
      code: 'SNOWTAP_USAGE',
      message: /--columns: unknown column 'nope'/,
    });
    assert.equal(COLUMNS.length, 38);
  });
});

describe('--pseudonymize-clients', () => {
  const keyFile = (name: string, key: string) => {
    const f = path.join(root, name);
    fs.writeFileSync(f, `${key}\n`);
    return f;
  };

  test('scan: no original client address in any form; pseudonyms stable across runs with one key, different with another', async () => {
    const k1 = keyFile('k1', 'first-secret-key-0123456789');
    const k2 = keyFile('k2', 'second-secret-key-0123456789');
    const a = await convert('pseudo-a', { 'pseudonymize-clients': k1 });
    const b = await convert('pseudo-b', { 'pseudonymize-clients': k1 }); // a restart, or another pod
    const c = await convert('pseudo-c', { 'pseudonymize-clients': k2 });
    for (const run of [a, b, c])
      for (const addr of [V4, V6, MAPPED])
        for (const f of forms(addr))
          assert.ok(!run.text.toLowerCase().includes(f.toLowerCase()), `${f} found`);
    const clientCol = (run: typeof a, q: string) =>
      run.rows.filter((r) => r.qname === q).map((r) => r.query_address);
    const pa = clientCol(a, 'a');
    assert.match(pa[0]!, /^[0-9a-f]{32}$/);
    assert.equal(new Set(pa).size, 1, 'one client, one pseudonym');
    assert.deepEqual(clientCol(b, 'a'), pa, 'same key: same pseudonyms');
    assert.notEqual(clientCol(c, 'a')[0], pa[0], 'another key: other pseudonyms');
    assert.equal(a.rows[0]!.tenant, 'exact-v4', 'policy lookup on the real address');
    assert.equal(clientCol(a, 'r')[0], '10.99.98.97', 'RESOLVER_*: the resolver itself, kept');
    const keyIds = (run: typeof a) => new Set(run.rows.map((r) => r.client_key_id));
    assert.equal(keyIds(a).size, 1);
    assert.match([...keyIds(a)][0]!, /^[0-9a-f]{16}$/);
    assert.deepEqual(keyIds(a), keyIds(b));
    assert.notDeepEqual(keyIds(a), keyIds(c));
    assert.match(a.rows.find((r) => r.qname === 'e')!.ecs!, /^[0-9a-f]{32}\/32$/);
    assert.match(a.rows.find((r) => r.qname === 'p')!.dnstap_policy_value!, /^[0-9a-f]{32}$/);
    // Unkeyed runs have no key id.
    const plain = await convert('pseudo-none', null);
    assert.ok(plain.rows.every((r) => r.client_key_id === ''));
  });

  test('an IPv4-mapped IPv6 client gets its IPv4 pseudonym; the key id is a PRF of the key, not the key', () => {
    const p = new Pseudonymizer(Buffer.from('k'.repeat(32)));
    assert.equal(p.pseudonym(Buffer.from(MAPPED)), p.pseudonym(Buffer.from(V4_OTHER)));
    assert.notEqual(p.pseudonym(Buffer.from(V4)), p.pseudonym(Buffer.from(V4_OTHER)));
    assert.ok(!p.keyId.toString().includes(Buffer.from('kkkk').toString('hex')));
    assert.throws(() => keyFromBytes(Buffer.from('short\n'), 'f'), /the key is 5 bytes, at least 16 needed/);
  });

  test('key rotation the way the kubelet updates a mounted Secret (atomic ..data symlink swap)', () => {
    // <dir>/key -> ..data/key, ..data -> ..2026_12_06_15_00_00.1, as the kubelet lays it out.
    const dir = path.join(root, 'secret-mount');
    fs.mkdirSync(dir);
    const version = (name: string, key: string) => {
      fs.mkdirSync(path.join(dir, name));
      fs.writeFileSync(path.join(dir, name, 'key'), key);
    };
    version('..2026_12_06_15_00_00.1', 'key-one-0123456789abcdef');
    fs.symlinkSync('..2026_12_06_15_00_00.1', path.join(dir, '..data'));
    fs.symlinkSync('..data/key', path.join(dir, 'key'));
    const p = Pseudonymizer.fromFile(path.join(dir, 'key'));
    const before = { id: p.keyId.toString(), name: p.pseudonym(Buffer.from(V4)) };
    assert.equal(p.reload(), false, 'unchanged');
    // The update: a new version directory, a temporary symlink renamed over ..data (atomic).
    version('..2026_12_06_15_05_00.2', 'key-two-0123456789abcdef');
    fs.symlinkSync('..2026_12_06_15_05_00.2', path.join(dir, '..data_tmp'));
    fs.renameSync(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
    fs.rmSync(path.join(dir, '..2026_12_06_15_00_00.1'), { recursive: true });
    assert.equal(p.reload(), true, 'the new key is picked up');
    assert.notEqual(p.keyId.toString(), before.id);
    assert.notEqual(p.pseudonym(Buffer.from(V4)), before.name);
    assert.equal(p.reloads, 1);
    assert.equal(p.reload(), false);
    // Back to the first key: its pseudonyms come back (stable per key).
    const again = new Pseudonymizer(keyFromBytes(Buffer.from('key-one-0123456789abcdef'), 'k'));
    assert.equal(again.pseudonym(Buffer.from(V4)), before.name);
  });
});

test('aggregates: a policy network more precise than the client mask is written at the mask length', () => {
  assert.equal(maskedCidrText('192.0.2.77/32', 24, 56), '192.0.2.0/24');
  assert.equal(maskedCidrText('192.0.2.0/26', 24, 56), '192.0.2.0/24');
  assert.equal(maskedCidrText('10.0.0.0/8', 24, 56), '10.0.0.0/8');
  assert.equal(maskedCidrText('2001:db8:1:2::1/128', 24, 56), '2001:db8:1::/56');
  assert.equal(maskedCidrText('2001:db8::/32', 24, 56), '2001:db8::/32');
  const text = maskedNetworkText({ maskClientIpv4: 24 });
  assert.ok(text !== undefined);
  assert.equal(text('198.51.100.7/32'), '198.51.100.0/24');
  assert.equal(maskedNetworkText({}), undefined, 'no masks: the policy text as it is');
});
