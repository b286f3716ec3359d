// Pins how the Go `dnstap` CLI prints awkward frames (the rules documented at the
// top of test/support/reference-decoders.ts), using hand-built frames: escaped
// and mixed-case names, the root, unknown types/classes/rcodes, QDCOUNT 0,
// unparsable DNS messages, frames without a message, IPv6 and IPv4-mapped
// addresses, trimmed nanoseconds, and a frame that is not protobuf at all.
// The byte builder below is test-only and independent of Snowtap's encoder.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { requireInterop } from '../support/peers';
import {
  type GoFrame,
  goDnstapFrames,
  goNameLabels,
  ReferenceDecoderError,
} from '../support/reference-decoders';

const varint = (n: number): number[] => {
  const out: number[] = [];
  for (; n >= 0x80; n = Math.floor(n / 128)) out.push((n % 128) | 0x80);
  out.push(n);
  return out;
};
const vField = (no: number, n: number) => [...varint(no << 3), ...varint(n)];
const bField = (no: number, b: number[]) => [...varint((no << 3) | 2), ...varint(b.length), ...b];
const fixed32 = (no: number, n: number) => [
  (no << 3) | 5,
  n & 0xff,
  (n >>> 8) & 0xff,
  (n >>> 16) & 0xff,
  n >>> 24,
];
const latin1 = (s: string) => [...Buffer.from(s, 'latin1')];

function wireName(labels: string[]): number[] {
  return [...labels.flatMap((l) => [l.length, ...latin1(l)]), 0];
}

/** DNS message: header + questions (+ an OPT record carrying extended-rcode bits). */
function dns(o: { flags?: number; qd?: [string[], number, number][]; extRcode?: number }): number[] {
  const q = (o.qd ?? []).flatMap(([n, t, c]) => [...wireName(n), t >> 8, t & 0xff, c >> 8, c & 0xff]);
  const opt = o.extRcode === undefined ? [] : [0, 0, 41, 0x10, 0, o.extRcode, 0, 0, 0, 0, 0];
  const f = o.flags ?? 0x0100;
  const qd = o.qd?.length ?? 0;
  return [0x12, 0x34, f >> 8, f & 0xff, 0, qd, 0, 0, 0, 0, 0, opt.length ? 1 : 0, ...q, ...opt];
}

interface Msg {
  type: number;
  qa?: number[];
  fam?: number;
  qs?: number;
  qn?: number;
  rs?: number;
  rn?: number;
  qm?: number[];
  rm?: number[];
}
const LO = [127, 0, 0, 1];

function frame(m: Msg | undefined, identity = 'edge'): number[] {
  const body = m
    ? [
        ...vField(1, m.type),
        ...(m.fam ? vField(2, m.fam) : []),
        ...(m.qa ? bField(4, m.qa) : []),
        ...(m.qs !== undefined ? [...vField(8, m.qs), ...fixed32(9, m.qn ?? 0)] : []),
        ...(m.qm ? bField(10, m.qm) : []),
        ...(m.rs !== undefined ? [...vField(12, m.rs), ...fixed32(13, m.rn ?? 0)] : []),
        ...(m.rm ? bField(14, m.rm) : []),
      ]
    : [];
  return [...bField(1, latin1(identity)), ...(m ? bField(14, body) : []), ...vField(15, 1)];
}

/** Frame Streams file: START(content type), data frames, STOP. */
function fstrmFile(frames: number[][]): Buffer {
  const u32 = (n: number) => [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
  const ct = latin1('protobuf:dnstap.Dnstap');
  const start = [...u32(2), ...u32(1), ...u32(ct.length), ...ct];
  const data = frames.flatMap((f) => [...u32(f.length), ...f]);
  return Buffer.from([...u32(0), ...u32(start.length), ...start, ...data, ...u32(0), ...u32(4), ...u32(3)]);
}

const dir = mkdtempSync(path.join(tmpdir(), 'snowtap-peers-edge-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const CQ = 5;
const CR = 6;
const T = 1700000000; // 2023-11-14 22:13:20 UTC

async function decode(frames: number[][]): Promise<GoFrame[]> {
  const file = path.join(dir, `f${Math.random().toString(36).slice(2)}.fstrm`);
  writeFileSync(file, fstrmFile(frames));
  return goDnstapFrames(file);
}

test('Go dnstap CLI: names keep case, gain a trailing dot and escape specials', async (t) => {
  if (!requireInterop(t, ['dnstap'])) return;
  const names = [
    ['Www', 'TAP', 'test'],
    ['a.b', 'sp ace'],
    ['q"(t);@$\\\'_-*'],
    ['\x00\t\x7f\xff\xc3\xa9'],
    [],
  ];
  const got = await decode(names.map((n) => frame({ type: CQ, qa: LO, qm: dns({ qd: [[n, 1, 1]] }) })));
  assert.deepEqual(
    got.map((f) => f.qname),
    [
      'Www.TAP.test.',
      'a\\.b.sp\\ ace.',
      'q\\"\\(t\\)\\;\\@$\\\\\\\'_-*.',
      '\\000\\009\\127\\255\\195\\169.',
      '.',
    ],
  );
  got.forEach((f, i) => {
    assert.deepEqual(
      goNameLabels(f.qname ?? ''),
      names[i].map((l) => Buffer.from(l, 'latin1')),
    );
  });
});

test('Go dnstap CLI: unknown types, classes and rcodes; QDCOUNT 0; EDNS extended rcode', async (t) => {
  if (!requireInterop(t, ['dnstap'])) return;
  const got = await decode([
    frame({ type: CQ, qm: dns({ qd: [[['x'], 65534, 3]] }) }),
    frame({ type: CQ, qm: dns({ qd: [[['x'], 0, 255]] }) }),
    frame({ type: CQ, qm: dns({ qd: [] }) }),
    frame({ type: CR, rs: T, rm: dns({ flags: 0x8180 | 11, qd: [[['x'], 1, 1]] }) }),
    frame({ type: CR, rs: T, rm: dns({ flags: 0x8180, qd: [[['x'], 1, 1]], extRcode: 1 }) }),
    frame({ type: CQ, qm: dns({ flags: 0x0100 | (3 << 11), qd: [[['x'], 1, 1]] }) }),
  ]);
  assert.deepEqual([got[0].qtype, got[0].qclass], ['TYPE65534', 'CH']);
  assert.deepEqual([got[1].qtype, got[1].qclass], ['None', 'CLASS255']);
  assert.equal(got[2].qname, undefined);
  assert.deepEqual(got[2].queryMessage?.counts, [0, 0, 0, 0]);
  assert.equal(got[3].rcode, ''); // rcode 11 has no mnemonic
  assert.equal(got[4].rcode, 'BADSIG'); // 1 << 4 | 0 = 16
  assert.equal(got[4].responseMessage?.edns, 'version 0; flags: ; udp: 4096');
  assert.equal(got[5].opcode, '');
});

test('Go dnstap CLI: unparsable messages, frames without a message, addresses and times', async (t) => {
  if (!requireInterop(t, ['dnstap'])) return;
  const mapped = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3];
  const v6 = [...Array(15).fill(0), 1];
  const got = await decode([
    frame({ type: CQ, qa: LO, qs: T, qn: 5, qm: [1, 2, 3] }),
    frame({ type: CQ, qm: [] }),
    frame({ type: 1 }, 'ed"ge\x01'),
    frame({ type: CR, fam: 2, qa: v6, rs: 1, rn: 100, qm: dns({ qd: [[['x'], 28, 1]] }) }),
    frame({ type: CQ, fam: 2, qa: mapped, qs: T, qn: 0 }),
  ]);
  assert.match(got[0].queryMessageError ?? '', /^parse failed: dns: /);
  assert.deepEqual([got[0].dnsFrom, got[0].qname, got[0].queryTimeNsec], ['query', undefined, 5]);
  assert.equal(got[0].queryTime, '2023-11-14 22:13:20.000000005');
  assert.match(got[1].queryMessageError ?? '', /^parse failed/);
  assert.deepEqual(got[2], { index: 2, identity: 'ed"ge\x01', type: 'AUTH_QUERY' });
  assert.equal(got[3].queryAddress, '::1');
  assert.deepEqual(
    [got[3].responseTime, got[3].responseTimeSec, got[3].responseTimeNsec],
    ['1970-01-01 00:00:01.0000001', 1, 100],
  );
  assert.deepEqual([got[3].dnsFrom, got[3].qtype], ['query', 'AAAA']); // response type, only a query message
  assert.equal(got[4].queryAddress, '10.1.2.3'); // IPv4-mapped IPv6 prints as IPv4
  assert.deepEqual(
    [got[4].queryTime, got[4].queryTimeSec, got[4].queryTimeNsec],
    ['2023-11-14 22:13:20', T, 0],
  );
});

test('Go dnstap CLI: a frame that is not protobuf stops it; reported with the partial count', async (t) => {
  if (!requireInterop(t, ['dnstap'])) return;
  const ok = frame({ type: CQ, qm: dns({ qd: [[['x'], 1, 1]] }) });
  await assert.rejects(decode([ok, [0xff, 0xff, 0xff], ok]), (err: unknown) => {
    assert.ok(err instanceof ReferenceDecoderError);
    assert.equal(err.code, 'REF_TOOL_STOPPED');
    assert.equal(err.partial, 1);
    return true;
  });
});

test('Go dnstap CLI: a MESSAGE frame without its message crashes it (nil-pointer panic)', async (t) => {
  if (!requireInterop(t, ['dnstap'])) return;
  const ok = frame({ type: CQ, qm: dns({ qd: [[['x'], 1, 1]] }) });
  await assert.rejects(decode([ok, ok, frame(undefined), ok]), (err: unknown) => {
    assert.ok(err instanceof ReferenceDecoderError);
    assert.equal(err.code, 'REF_TOOL_FAILED');
    assert.match(err.message, /exited 2 after 2 frames: panic: /);
    assert.equal(err.partial, 2);
    return true;
  });
});
