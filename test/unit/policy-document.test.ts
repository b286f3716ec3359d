// Policy documents: parsing, gzip, limits, and every validation error (by code and by
// the field path named in the message); loading through the worker and from files.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import {
  loadPolicyBytes,
  loadPolicyDocument,
  loadPolicyFile,
  PolicyError,
  type PolicyErrorCode,
  parsePolicyDocument,
} from '../../enricher/policy';

const json = (doc: unknown) => Buffer.from(JSON.stringify(doc));
const parse = (doc: unknown) => parsePolicyDocument(json(doc), 'test.json');

/** Asserts that `fn` throws a PolicyError with `code` whose message contains every `parts`. */
function rejects(fn: () => unknown, code: PolicyErrorCode, ...parts: string[]): PolicyError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof PolicyError, `expected PolicyError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.equal(caught.name, 'PolicyError');
  assert.ok(caught.message.startsWith('policy test.json: '), caught.message);
  for (const p of parts)
    assert.ok(caught.message.includes(p), `${JSON.stringify(caught.message)} lacks ${p}`);
  return caught;
}

const domain = (suffix: unknown, extra: object = {}) => ({
  suffix,
  category: 'ads',
  action: 'block',
  ...extra,
});
const withDomains = (...domains: unknown[]) => ({ version: '1', domains });
const withNetworks = (...networks: unknown[]) => ({ version: '1', networks });
const net = (cidr: unknown, tenant: unknown = 't') => ({ cidr, tenant });

describe('document-level errors', () => {
  test('not JSON, not UTF-8, not an object', () => {
    rejects(
      () => parsePolicyDocument(Buffer.from('{"version": '), 'test.json'),
      'POLICY_BAD_JSON',
      'is not JSON',
    );
    rejects(
      () => parsePolicyDocument(Buffer.from([0x7b, 0xff, 0x7d]), 'test.json'),
      'POLICY_BAD_JSON',
      'UTF-8',
    );
    rejects(() => parse([1, 2]), 'POLICY_INVALID', 'must be a JSON object');
    rejects(() => parse(null), 'POLICY_INVALID', 'must be a JSON object');
  });

  test('corrupt or truncated gzip', () => {
    const gz = gzipSync(json(withDomains()));
    rejects(() => parsePolicyDocument(gz.subarray(0, gz.length - 6), 'test.json'), 'POLICY_GZIP', 'bad gzip');
    rejects(() => parsePolicyDocument(Buffer.from([0x1f, 0x8b, 1, 2, 3]), 'test.json'), 'POLICY_GZIP');
  });

  test('size limit, plain and after decompression', () => {
    const doc = json({ version: 'x'.repeat(200) });
    rejects(
      () => parsePolicyDocument(doc, 'test.json', { maxDocumentBytes: 100 }),
      'POLICY_TOO_LARGE',
      '100',
    );
    const bomb = gzipSync(Buffer.alloc(1 << 20, 0x20));
    rejects(
      () => parsePolicyDocument(bomb, 'test.json', { maxDocumentBytes: 1000 }),
      'POLICY_TOO_LARGE',
      'decompresses to more than 1000 bytes',
    );
  });

  test('unknown top-level key is named', () => {
    const err = rejects(
      () => parse({ version: '1', domain: [] }),
      'POLICY_INVALID',
      'domain: unknown top-level key',
    );
    assert.equal(err.path, 'domain');
  });

  test('version is a required non-empty string', () => {
    rejects(() => parse({ domains: [] }), 'POLICY_INVALID', 'version: must be a non-empty string');
    rejects(() => parse({ version: '' }), 'POLICY_INVALID', 'version: must be a non-empty string');
    rejects(() => parse({ version: 7 }), 'POLICY_INVALID', 'version: must be a non-empty string');
    rejects(() => parse({ version: 'v'.repeat(257) }), 'POLICY_INVALID', 'version: is longer than 256');
  });

  test('domains and networks must be arrays of objects', () => {
    rejects(() => parse({ version: '1', domains: {} }), 'POLICY_INVALID', 'domains: must be an array');
    rejects(() => parse({ version: '1', networks: 'x' }), 'POLICY_INVALID', 'networks: must be an array');
    rejects(
      () => parse(withDomains(domain('a.com'), 'b.com')),
      'POLICY_INVALID',
      'domains[1]: must be an object',
    );
    rejects(() => parse(withNetworks(null)), 'POLICY_INVALID', 'networks[0]: must be an object');
  });
});

describe('domain entry errors', () => {
  test('unknown keys and field types', () => {
    rejects(
      () => parse(withDomains(domain('a.com', { tenant: 'x' }))),
      'POLICY_INVALID',
      'domains[0].tenant: unknown key',
    );
    rejects(
      () => parse(withDomains(domain('a.com'), domain(12))),
      'POLICY_INVALID',
      'domains[1].suffix: must be a string',
    );
    rejects(
      () => parse(withDomains({ suffix: 'a.com', action: 'x' })),
      'POLICY_INVALID',
      'domains[0].category: must be a string',
    );
    rejects(
      () => parse(withDomains({ suffix: 'a.com', category: 'c', action: null })),
      'POLICY_INVALID',
      'domains[0].action',
    );
    rejects(
      () => parse(withDomains(domain('a.com', { category: 'c'.repeat(1025) }))),
      'POLICY_INVALID',
      'domains[0].category: is longer than 1024',
    );
  });

  const bad: [string, string][] = [
    ['a..com', 'has an empty label'],
    ['.a.com', 'has an empty label'],
    ['a.com..', 'has an empty label'],
    ['ex ample.com', 'not printable ASCII'],
    ['b\u00fccher.de', 'xn--'],
    ['tab\t.com', 'not printable ASCII'],
    ['a\\1.com', 'three decimal digits'],
    ['a\\256.com', 'above 255'],
    ['a.com\\', 'does not start an escape'],
    ['x'.repeat(64) + '.com', 'label longer than 63'],
    [Array.from({ length: 5 }, () => 'y'.repeat(60)).join('.'), 'longer than 255 bytes'],
  ];
  for (const [suffix, problem] of bad) {
    test(`suffix ${JSON.stringify(suffix.slice(0, 24))}: ${problem}`, () => {
      const err = rejects(
        () => parse(withDomains(domain('ok.com'), domain(suffix))),
        'POLICY_INVALID',
        problem,
      );
      assert.equal(err.path, 'domains[1].suffix');
    });
  }

  test('limits count wire bytes: a 63-byte label of escapes and a 255-byte name are fine', () => {
    const label = '\\046'.repeat(63);
    const name = [...Array.from({ length: 3 }, () => 'z'.repeat(63)), 'z'.repeat(61)].join('.');
    assert.equal(parse(withDomains(domain(label + '.com'), domain(name))).domains.size, 2);
  });

  test('duplicates after normalisation are errors naming both entries', () => {
    const err = rejects(
      () => parse(withDomains(domain('example.com'), domain('x.org'), domain('EXAMPLE.com.'))),
      'POLICY_DUPLICATE',
      'domains[2].suffix: "example.com" duplicates domains[0]',
    );
    assert.equal(err.path, 'domains[2].suffix');
    rejects(
      () => parse(withDomains(domain(''), domain('.'))),
      'POLICY_DUPLICATE',
      '(the root) duplicates domains[0]',
    );
  });
});

describe('network entry errors', () => {
  const bad: [unknown, string][] = [
    [10, 'must be a string'],
    ['10.0.0.0', 'is not ADDRESS/LENGTH'],
    ['10.0.0.256/8', 'not hold a valid IPv4 address'],
    ['010.0.0.0/8', 'not hold a valid IPv4 address'],
    ['10.0.0/8', 'not hold a valid IPv4 address'],
    ['10.0.0.0/33', '"10.0.0.0/33" has a prefix length above 32'],
    ['::/129', 'has a prefix length above 128'],
    ['10.0.0.0/08', 'invalid prefix length'],
    ['10.0.0.0/', 'invalid prefix length'],
    ['10.0.0.0/-1', 'invalid prefix length'],
    ['10.0.0.1/8', 'has host bits set (the network is 10.0.0.0/8)'],
    ['2001:db8::1/32', 'has host bits set (the network is 2001:db8::/32)'],
    ['2001:::1/64', 'not hold a valid IPv6 address'],
    ['1::2::3/64', 'not hold a valid IPv6 address'],
    ['1:2:3:4:5:6:7:8:9/128', 'not hold a valid IPv6 address'],
    ['1:2:3:4:5:6:7/128', 'not hold a valid IPv6 address'],
    ['fe80::1%eth0/128', 'not hold a valid IPv6 address'],
    ['12345::/16', 'not hold a valid IPv6 address'],
    ['::ffff:1.2.3/128', 'not hold a valid IPv6 address'],
  ];
  for (const [cidr, problem] of bad) {
    test(`cidr ${JSON.stringify(cidr)}: ${problem}`, () => {
      const err = rejects(
        () => parse(withNetworks(net('192.0.2.0/24'), net(cidr))),
        'POLICY_INVALID',
        problem,
      );
      assert.equal(err.path, 'networks[1].cidr');
    });
  }

  test('tenant and unknown keys', () => {
    rejects(
      () => parse(withNetworks(net('10.0.0.0/8', 5))),
      'POLICY_INVALID',
      'networks[0].tenant: must be a string',
    );
    rejects(
      () => parse(withNetworks({ cidr: '10.0.0.0/8', tenant: 't', name: 'x' })),
      'POLICY_INVALID',
      'networks[0].name: unknown key',
    );
  });

  test('duplicates, including an IPv4-mapped twin, are errors', () => {
    rejects(
      () => parse(withNetworks(net('10.0.0.0/8'), net('10.0.0.0/8'))),
      'POLICY_DUPLICATE',
      'networks[1].cidr',
      'networks[0]',
    );
    rejects(
      () => parse(withNetworks(net('2001:db8::/32'), net('2001:0DB8:0::/32'))),
      'POLICY_DUPLICATE',
      'networks[0]',
    );
    rejects(
      () => parse(withNetworks(net('10.0.0.0/8'), net('::ffff:10.0.0.0/104'))),
      'POLICY_DUPLICATE',
      'networks[0]',
    );
    rejects(
      () => parse(withNetworks(net('0.0.0.0/0'), net('::ffff:0:0/96'))),
      'POLICY_DUPLICATE',
      'networks[0]',
    );
  });
});

describe('valid documents', () => {
  const doc = { version: 'v42', domains: [domain('example.com')], networks: [net('10.0.0.0/8', 'acme')] };

  test('gzip is detected by magic; a BOM is tolerated; lists may be omitted', () => {
    assert.equal(parsePolicyDocument(gzipSync(json(doc)), 'test.json').version, 'v42');
    const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), json(doc)]);
    assert.equal(parsePolicyDocument(bom, 'test.json').domains.size, 1);
    const bare = parse({ version: 'empty' });
    assert.equal(bare.domains.size + bare.networks.size, 0);
    assert.equal(bare.domains.lookupName('example.com'), null);
  });

  test('worker load matches the in-thread load and keeps errors typed', async () => {
    const tables = await loadPolicyDocument(gzipSync(json(doc)), 'w.json');
    assert.equal(tables.version, 'v42');
    assert.equal(tables.domains.lookupName('www.example.com')?.category, 'ads');
    const err = await loadPolicyDocument(json(withDomains(domain('a..b'))), 'w.json').catch(
      (e: unknown) => e,
    );
    assert.ok(err instanceof PolicyError);
    assert.equal(err.code, 'POLICY_INVALID');
    assert.equal(err.path, 'domains[0].suffix');
    assert.match(err.message, /^policy w\.json: domains\[0\]\.suffix: "a\.\.b" has an empty label$/);
    const inThread = await loadPolicyDocument(json(doc), 'w.json', { worker: false });
    assert.equal(inThread.networks.size, 1);
  });

  const loadedAt = new Date('2030-01-02T03:04:05Z');
  const load = () => loadPolicyBytes(json(doc), { source: 'http://x/p', sourceEtag: '"abc"', loadedAt });

  test('Policy: metadata', async () => {
    const p = await load();
    assert.equal(p.version, 'v42');
    assert.equal(p.sourceEtag, '"abc"');
    assert.equal(p.source, 'http://x/p');
    assert.equal(p.loadedAt, loadedAt);
    assert.equal(p.domainCount, 1);
    assert.equal(p.networkCount, 1);
  });

  test('Policy: immutable', async () => {
    const p = await load();
    assert.ok(Object.isFrozen(p));
    assert.throws(() => {
      (p as { version: string }).version = 'other';
    }, TypeError);
  });

  test('Policy: lookups', async () => {
    const p = await load();
    assert.equal(p.lookupDomainName('a.example.com')?.suffix, 'example.com');
    assert.equal(p.lookupNetwork(Buffer.from([10, 1, 2, 3]), 0, 4)?.tenant, 'acme');
  });
});

describe('loadPolicyFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'policy-document-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('reads plain and gzip files', async () => {
    writeFileSync(join(dir, 'p.json'), JSON.stringify({ version: 'plain' }));
    writeFileSync(join(dir, 'p.json.gz'), gzipSync(JSON.stringify({ version: 'gz' })));
    assert.equal((await loadPolicyFile(join(dir, 'p.json'))).version, 'plain');
    assert.equal((await loadPolicyFile(join(dir, 'p.json.gz'))).version, 'gz');
    assert.ok((await loadPolicyFile(join(dir, 'p.json'))).loadedAt instanceof Date);
  });

  test('a missing file is POLICY_IO naming the path', async () => {
    const path = join(dir, 'missing.json');
    const err = await loadPolicyFile(path).catch((e: unknown) => e);
    assert.ok(err instanceof PolicyError);
    assert.equal(err.code, 'POLICY_IO');
    assert.ok(err.message.startsWith(`policy ${path}: cannot be read`), err.message);
    assert.equal((err.cause as NodeJS.ErrnoException).code, 'ENOENT');
  });
});
