// "Minimise at the edge" (issue 9 step 1, agent side): agent/edge-mask.ts rewrites the client
// address bytes in place in the dnstap frame. Checked against the enricher's own masking: a
// capture masked in place by the agent and converted without masking gives the same
// query_address and dnstap_policy_value as the original converted with the enricher's masks
// (the same rule of which address is the client's), and no original client address survives in
// the frame bytes or the rows.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EdgeMask } from '../../agent/edge-mask';
import { AGENT_DEFAULTS, AGENT_LIMITS, resolveAgentOptions } from '../../agent/options';
import { silentLogger } from '../../common/log';
import { dnstapFrame, encodeChunk } from '../support/chunk-builder';
import { parseCsvText } from '../support/output-rows';
import { forms, frames, MAPPED, V4, V6 } from '../support/privacy-scan';

async function rows(frameBufs: Buffer[], encoder = {}) {
  const text = encodeChunk(frameBufs, { encoder }).chunk.toString('utf8');
  return { text, rows: await parseCsvText(text) };
}

test('agent masking in place == enricher masking for the client columns; no original bytes left', async () => {
  const original = frames().map(dnstapFrame);
  const masked = original.map((f) => Buffer.from(f));
  const edge = EdgeMask.from({ maskClientIpv4: 24, maskClientIpv6: 56, dropEcs: false })!;
  for (const f of masked) assert.ok(edge.apply(f, 0, f.length));
  for (let i = 0; i < masked.length; i++) assert.equal(masked[i]!.length, original[i]!.length);
  const raw = Buffer.concat(masked);
  for (const a of [V4, V6, MAPPED.slice(12)]) {
    assert.equal(raw.indexOf(Buffer.from(a)), -1, `raw bytes ${Buffer.from(a).toString('hex')} left`);
  }
  const atEdge = await rows(masked);
  const inEnricher = await rows(original, { maskClientIpv4: 24, maskClientIpv6: 56 });
  for (const a of [V4, V6, MAPPED])
    for (const f of forms(a)) assert.ok(!atEdge.text.toLowerCase().includes(f.toLowerCase()), f);
  assert.equal(atEdge.rows.length, inEnricher.rows.length);
  for (let i = 0; i < atEdge.rows.length; i++) {
    const e = atEdge.rows[i]!;
    const r = inEnricher.rows[i]!;
    for (const c of ['query_address', 'response_address', 'message_type'])
      assert.equal(e[c], r[c], `row ${i} ${c}`);
    // A CLIENT_IP value that is no address (3 bytes): the enricher leaves it out, the agent zeroes it.
    if (e.dnstap_policy_value === '\\x00\\x00\\x00') assert.equal(r.dnstap_policy_value, '');
    else assert.equal(e.dnstap_policy_value, r.dnstap_policy_value, `row ${i} dnstap_policy_value`);
  }
  // ECS: the bits are masked, the prefix length stays (it fixes the option's length).
  const ecs = atEdge.rows.filter((r) => ['e', 'f', 'g'].includes(r.qname!)).map((r) => r.ecs);
  assert.deepEqual(ecs, ['192.0.2.0/32', '2001:db8:1234:5600::/128', '::ffff:203.0.113.0/128']);
  // The resolver's own address (RESOLVER_*/FORWARDER_*) is kept.
  assert.ok(atEdge.rows.filter((r) => r.qname === 'r').every((r) => r.query_address === '10.99.98.97'));
});

test('--drop-ecs in the agent: the option becomes padding, the message stays valid, ecs is empty', async () => {
  const original = frames().map(dnstapFrame);
  const edge = EdgeMask.from({ maskClientIpv4: 32, maskClientIpv6: 128, dropEcs: true })!;
  const masked = original.map((f) => Buffer.from(f));
  for (const f of masked) assert.ok(edge.apply(f, 0, f.length));
  const out = await rows(masked);
  const ecsRows = out.rows.filter((r) => ['e', 'f', 'g'].includes(r.qname!));
  assert.equal(ecsRows.length, 3);
  for (const r of ecsRows) {
    assert.equal(r.ecs, '');
    assert.notEqual(r.qname, '', 'the DNS message still parses');
  }
  // Query addresses untouched with the default widths.
  assert.ok(out.rows.some((r) => r.query_address === '192.0.2.77'));
});

test('defaults mask nothing (no masker); a non-dnstap frame is refused; options validated', () => {
  assert.equal(EdgeMask.from({ maskClientIpv4: 32, maskClientIpv6: 128, dropEcs: false }), null);
  const edge = EdgeMask.from({ maskClientIpv4: 8, maskClientIpv6: 128, dropEcs: false })!;
  assert.equal(edge.apply(Buffer.from([0xff, 0xff, 0xff]), 0, 3), false);
  assert.equal(AGENT_DEFAULTS.maskClientIpv4, 32);
  assert.deepEqual(AGENT_LIMITS.maskClientIpv6, { min: 0, max: 128, integer: true });
  const base = { id: 'a', enrichers: [{ host: 'h', port: 1 }], inputFile: 'x', log: silentLogger() };
  assert.throws(
    () => resolveAgentOptions({ ...base, maskClientIpv4: 33 }),
    /maskClientIpv4 must be an integer in \[0, 32\]/,
  );
  assert.throws(() => resolveAgentOptions({ ...base, dropEcs: 'yes' as unknown as boolean }), /dropEcs/);
});
