// A policy of the size operators run: 1M domains and 100k networks, written gzip to a
// temp dir and loaded through loadPolicyFile (worker thread). The bound is loose for CI;
// loadtest/bench-policy.ts measures the real figures. In the e2e tier, not the unit tier: it
// takes ~6 s and its time bound fails when other work loads the machine (the edit loop).

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { loadPolicyFile } from '../../enricher/policy';

const DOMAINS = 1_000_000;
const NETWORKS = 100_000;
const V4_NETWORKS = 80_000;
const LOAD_BOUND_MS = 20_000;
const TLDS = ['com', 'net', 'org', 'io', 'co.uk'];

// Rule i: d<i>.<tld>; every 10th rule is one label deeper (w.d<i>.<tld>).
const suffixOf = (i: number) => `${i % 10 === 0 ? 'w.' : ''}d${i.toString(36)}.${TLDS[i % TLDS.length]}`;
// Network i: 10.0.0.0 + i*256 as a /24 for IPv4, 2001:db8:<i>::/48 beyond.
const v4Of = (i: number) => [10 + (i >>> 16), (i >>> 8) & 255, i & 255];
const cidrOf = (i: number) =>
  i < V4_NETWORKS ? `${v4Of(i).join('.')}.0/24` : `2001:db8:${(i - V4_NETWORKS).toString(16)}::/48`;

function document(): Buffer {
  const parts: string[] = ['{"version":"large-1","domains":['];
  for (let i = 0; i < DOMAINS; i++) {
    parts.push(`${i === 0 ? '' : ','}{"suffix":"${suffixOf(i)}","category":"c${i % 7}","action":"block"}`);
  }
  parts.push('],"networks":[');
  for (let i = 0; i < NETWORKS; i++)
    parts.push(`${i === 0 ? '' : ','}{"cidr":"${cidrOf(i)}","tenant":"t${i}"}`);
  parts.push(']}');
  return Buffer.from(parts.join(''));
}

const dir = mkdtempSync(join(tmpdir(), 'policy-large-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('1M domains + 100k networks (gzip) load within the bound and answer correctly', async (t) => {
  const file = join(dir, 'policy.json.gz');
  writeFileSync(file, gzipSync(document(), { level: 1 }));

  const t0 = performance.now();
  const policy = await loadPolicyFile(file);
  const ms = performance.now() - t0;
  t.diagnostic(`load ${Math.round(ms)} ms`);
  assert.ok(ms < LOAD_BOUND_MS, `load took ${Math.round(ms)} ms`);
  assert.equal(policy.version, 'large-1');
  assert.equal(policy.domainCount, DOMAINS);
  assert.equal(policy.networkCount, NETWORKS);

  const name = Buffer.alloc(256);
  const starts = new Int32Array(128);
  const lookup = (qname: string) => {
    name.write(qname, 'latin1');
    let count = 0;
    starts[count++] = 0;
    for (let i = 0; i < qname.length; i++) if (qname[i] === '.') starts[count++] = i + 1;
    return policy.lookupDomain(name, qname.length, starts, count);
  };
  for (let k = 0; k < 20_000; k++) {
    const i = (k * 7919 + 13) % DOMAINS;
    const rule = lookup(`x.y.${suffixOf(i)}`);
    assert.ok(rule, `rule ${i}`);
    assert.equal(rule.suffix, suffixOf(i));
    assert.equal(rule.category, `c${i % 7}`);
    assert.equal(rule.csv.toString(), `c${i % 7},block,${suffixOf(i)}`);
    assert.equal(lookup(`q${suffixOf(i)}`), null);
    if (i % 10 === 0) assert.equal(lookup(suffixOf(i).slice(2)), null, 'the parent of a deeper rule');
  }

  const v4 = Buffer.alloc(4);
  const v6 = Buffer.alloc(16);
  for (let k = 0; k < 20_000; k++) {
    const i = (k * 104729 + 7) % NETWORKS;
    if (i < V4_NETWORKS) {
      v4.set([...v4Of(i), k & 255]);
      assert.equal(policy.lookupNetwork(v4, 0, 4)?.tenant, `t${i}`);
    } else {
      v6.fill(0);
      v6.set([0x20, 0x01, 0x0d, 0xb8, (i - V4_NETWORKS) >> 8, (i - V4_NETWORKS) & 255, 0, 0, k & 255]);
      assert.equal(policy.lookupNetwork(v6, 0, 16)?.tenant, `t${i}`);
    }
  }
  assert.equal(policy.lookupNetwork(Buffer.from([9, 1, 2, 3]), 0, 4), null);
  assert.equal(policy.lookupNetwork(Buffer.from([11, 255, 0, 1]), 0, 4), null);
});
