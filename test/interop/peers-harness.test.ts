// Checks that the interop harness itself works: the skip/fail rule, the
// fixtures (checksums, both reference decoders agree on every file, every frame
// decodes), the capture/replay wrappers with both receivers (including a
// unidirectional sender), and one short real producer run.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, type TestContext, test } from 'node:test';
import {
  FIXTURES_DIR,
  freePort,
  fstrmCapture,
  fstrmReplay,
  peersAvailable,
  requireInterop,
  runProducer,
} from '../support/peers';
import { dnstapLdnsCount, goDnstapFrames } from '../support/reference-decoders';

const fixtures = readdirSync(FIXTURES_DIR).filter((f) => f.endsWith('.fstrm'));
const dir = mkdtempSync(path.join(tmpdir(), 'snowtap-peers-harness-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('requireInterop skips with an apt hint, or fails when SNOWTAP_REQUIRE_INTEROP=1', (t) => {
  assert.deepEqual(peersAvailable(['no-such-program-snowtap']), {
    ok: false,
    missing: ['no-such-program-snowtap'],
  });
  const saved = process.env.SNOWTAP_REQUIRE_INTEROP;
  t.after(() => {
    if (saved === undefined) delete process.env.SNOWTAP_REQUIRE_INTEROP;
    else process.env.SNOWTAP_REQUIRE_INTEROP = saved;
  });
  const skipped: string[] = [];
  const fake = { skip: (msg: string) => skipped.push(msg) } as unknown as TestContext;
  delete process.env.SNOWTAP_REQUIRE_INTEROP;
  assert.equal(requireInterop(fake, ['no-such-program-snowtap', 'pdns']), false);
  assert.match(skipped[0], /^missing no-such-program-snowtap.*: apt-get install no-such-program-snowtap/);
  process.env.SNOWTAP_REQUIRE_INTEROP = '1';
  assert.throws(
    () => requireInterop(fake, ['dnstap-ldns', 'no-such-program-snowtap']),
    /interop required.*missing/,
  );
});

test('reference tools needed by the harness are installed', (t) => {
  if (!requireInterop(t, ['dnstap', 'dnstap-ldns', 'fstrm_replay', 'fstrm_capture'])) return;
  assert.ok(peersAvailable(['dnstap', 'dnstap-ldns']).ok);
});

test('every fixture is listed in SHA256SUMS with its checksum', () => {
  const sums = new Map(
    readFileSync(path.join(FIXTURES_DIR, 'SHA256SUMS'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => [l.slice(66), l.slice(0, 64)] as const),
  );
  assert.deepEqual([...sums.keys()].sort(), [...fixtures].sort());
  for (const f of fixtures) {
    const sum = createHash('sha256')
      .update(readFileSync(path.join(FIXTURES_DIR, f)))
      .digest('hex');
    assert.equal(sum, sums.get(f), f);
  }
});

for (const f of fixtures) {
  test(`reference decoders agree on ${f}, and every frame decodes`, async (t) => {
    if (!requireInterop(t, ['dnstap', 'dnstap-ldns'])) return;
    const file = path.join(FIXTURES_DIR, f);
    const [frames, ldns] = await Promise.all([goDnstapFrames(file), dnstapLdnsCount(file)]);
    assert.equal(frames.length, ldns);
    for (const fr of frames) {
      const where = `${f} frame ${fr.index}`;
      assert.ok(fr.type && fr.socketFamily && fr.socketProtocol, where);
      assert.ok(fr.queryTime || fr.responseTime, where);
      assert.equal(fr.dnsError, undefined, where);
      assert.ok(fr.qname?.endsWith('.') && fr.qtype && fr.qclass && fr.rcode !== undefined, where);
    }
  });
}

async function replayInto(t: TestContext, receiver: 'fstrm' | 'node', tcp: boolean): Promise<void> {
  if (!requireInterop(t, ['fstrm_capture', 'fstrm_replay', 'dnstap'])) return;
  const src = path.join(FIXTURES_DIR, 'kdig-tool-file.fstrm');
  const out = path.join(dir, `replay-${receiver}-${tcp}.fstrm`);
  const where = tcp
    ? { tcp: await freePort({ udp: false }) }
    : { unix: path.join(dir, `r-${receiver}.sock`) };
  const cap = await fstrmCapture({ ...where, out, receiver });
  const r = await fstrmReplay({ files: [src, src], ...where });
  assert.equal(r.code, 0, r.stderr);
  await new Promise((res) => setTimeout(res, 200)); // let the receiver drain the socket
  const stopped = await cap.stop();
  assert.equal(stopped.dataFrames, 24, stopped.stderr);
  const [a, b] = await Promise.all([goDnstapFrames(src), goDnstapFrames(out)]);
  assert.deepEqual(b, [...a, ...a.map((fr) => ({ ...fr, index: fr.index + a.length }))]);
}

test('fstrm_replay -> fstrm_capture over a unix socket', (t) => replayInto(t, 'fstrm', false));
test('fstrm_replay -> fstrm-capture.js over TCP (bidirectional)', (t) => replayInto(t, 'node', true));

test('fstrm-capture.js accepts a unidirectional sender (START, frames, STOP)', async (t) => {
  if (!requireInterop(t, ['dnstap'])) return;
  const src = readFileSync(path.join(FIXTURES_DIR, 'kdig-tool-file.fstrm'));
  const sock = path.join(dir, 'uni.sock');
  const out = path.join(dir, 'uni.fstrm');
  const cap = await fstrmCapture({ unix: sock, out, receiver: 'node' });
  await new Promise<void>((resolve, reject) => {
    // A Frame Streams file is exactly what a unidirectional sender writes.
    const c = connect(sock, () => c.end(src));
    c.on('close', () => resolve()).on('error', reject);
  });
  const stopped = await cap.stop();
  assert.equal(stopped.dataFrames, 12);
  assert.match(stopped.stderr, /connection 1: unidirectional/);
  assert.deepEqual(readFileSync(out), src);
});

test('run-producer.sh: unbound, unidirectional, 1 s of dnsperf into fstrm-capture.js', async (t) => {
  if (!requireInterop(t, ['unbound', 'dnstap-ldns'])) return;
  const out = path.join(dir, 'unbound.fstrm');
  const sock = path.join(dir, 'unbound.sock');
  const cap = await fstrmCapture({ unix: sock, out, receiver: 'node' });
  const r = await runProducer({
    producer: 'unbound',
    dest: `unix:${sock}`,
    seconds: 1,
    qps: 50,
    env: { BIDIRECTIONAL: 'no', FLUSH_WAIT: '1' },
  });
  const stopped = await cap.stop();
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.dnsperf && r.dnsperf.sent > 0 && r.dnsperf.completed > 0, r.stdout);
  // CQ + CR per query, plus run-producer's readiness probe(s); late answers dnsperf counted as lost still log.
  const frames = stopped.dataFrames ?? 0;
  assert.ok(frames >= 2 * r.dnsperf.completed && frames <= 2 * r.dnsperf.sent + 8, `${frames} frames`);
  assert.equal(await dnstapLdnsCount(out), stopped.dataFrames);
});

test('run-producer.sh exits 3 for a transport the producer lacks', async (t) => {
  if (!requireInterop(t, ['kresd'])) return;
  const r = await runProducer({ producer: 'kresd', dest: 'tcp:127.0.0.1:9', seconds: 0, qps: 0 });
  assert.equal(r.code, 3, r.stderr);
});
