import assert from 'node:assert/strict';
import { test } from 'node:test';
import { blockId, stagedPrefix } from '../../enricher/output/azure-store';
import { objectName, parseOutputUrl, recordName } from '../../enricher/output/object-url';

test('--output-url: az:// and s3:// parse to container + normalised prefix', () => {
  assert.deepEqual(parseOutputUrl('az://snowtap/dns/logs/'), {
    scheme: 'az',
    container: 'snowtap',
    prefix: 'dns/logs/',
    href: 'az://snowtap/dns/logs/',
  });
  assert.deepEqual(parseOutputUrl('s3://my.bucket'), {
    scheme: 's3',
    container: 'my.bucket',
    prefix: '',
    href: 's3://my.bucket/',
  });
  const u = parseOutputUrl('s3://b-1//x//y');
  assert.equal(u.prefix, 'x/y/');
  assert.equal(objectName(u, '2026/12/06/17', 'snowtap-a.csv'), 'x/y/2026/12/06/17/snowtap-a.csv');
  assert.equal(recordName(u, 'pod-1'), 'x/y/_partial/pod-1/owner.json');
});

test('--output-url: bad input is one clear error naming the problem', () => {
  const cases: [string, RegExp][] = [
    ['gs://bucket/x', /scheme gs: must be one of az, s3/],
    ['/data/out', /must look like az:\/\/CONTAINER\/PREFIX/],
    ['az://Upper/x', /container\/bucket "Upper"/],
    ['az://ab/x', /container\/bucket "ab"/],
    ['s3://bucket/a/../b', /prefix component "\.\."/],
    ['s3://bucket/_partial/x', /prefix component "_partial"/],
  ];
  for (const [url, re] of cases) {
    assert.throws(
      () => parseOutputUrl(url),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'OUTPUT_INVALID_OPTION');
        assert.match(err.message, re);
        assert.equal(err.message.includes('\n'), false);
        return true;
      },
    );
  }
});

test('az:// recovery commits the gap-free prefix of staged blocks, in order', () => {
  const ids = [3, 1, 2, 5, 6].map(blockId);
  assert.deepEqual(stagedPrefix(ids), [1, 2, 3].map(blockId));
  assert.deepEqual(stagedPrefix([2, 3].map(blockId)), [], 'no block 1 (the header): nothing');
  // Equal-length ids (the service requires it) that sort by staging order.
  assert.equal(new Set([1, 99_999_999].map((n) => blockId(n).length)).size, 1);
});
