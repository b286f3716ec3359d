// Header flags, opcode, EDNS UDP size / DO and the answers text (proto/dns/answers.ts),
// checked against dns-packet (an independent encoder and decoder, with name compression) and
// against hand-built bytes for what dns-packet cannot produce (bad RDATA, hostile pointers,
// 64 KiB TXT). The expected answers text is derived from dns-packet's decoded objects.

import assert from 'node:assert/strict';
import { SocketAddress } from 'node:net';
import { describe, test } from 'node:test';
import * as dnsPacket from 'dns-packet';
import { DnsView, opcodeName, parseDnsMessage, tryParseDnsMessage } from '../../proto/dns';
import { ANSWERS_TEXT_SLACK, AnswersWriter, answersText, flagsText } from '../../proto/dns/answers';
import { DnsBuilder } from '../support/dns-builder';

function parse(msg: Buffer): DnsView {
  const view = new DnsView();
  parseDnsMessage(msg, 0, msg.length, view);
  return view;
}

/** Entries of an answers text: split on ";" not escaped by a backslash. */
function entriesOf(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\\') {
      cur += c + (text[i + 1] ?? '');
      i++;
    } else if (c === ';') {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out;
}

/** inet_ntop's text (libuv): RFC 5952, IPv4-mapped as ::ffff:a.b.c.d, like ours. */
const ntop = (a: string) => new SocketAddress({ address: a, family: 'ipv6' }).address;

const lower = (s: string) => s.replace(/\.$/, '').replace(/[A-Z]/g, (c) => c.toLowerCase()) || '.';

function txtString(b: Buffer): string {
  let s = '"';
  for (const x of b) {
    if (x === 0x22 || x === 0x5c || x === 0x3b) s += `\\${String.fromCharCode(x)}`;
    else if (x < 0x20 || x > 0x7e) s += `\\${String(x).padStart(3, '0')}`;
    else s += String.fromCharCode(x);
  }
  return `${s}"`;
}

/** The expected entry for one answer as dns-packet decoded it. */
function expectedEntry(a: dnsPacket.Answer): string {
  // biome-ignore lint/suspicious/noExplicitAny: dns-packet's data union per type
  const d = (a as any).data;
  switch (a.type) {
    case 'A':
      return `A ${d}`;
    case 'AAAA':
      return `AAAA ${ntop(d)}`;
    case 'CNAME':
    case 'NS':
    case 'PTR':
    case 'DNAME':
      return `${a.type} ${lower(d)}`;
    case 'MX':
      return `MX ${d.preference} ${lower(d.exchange)}`;
    case 'SRV':
      return `SRV ${d.priority ?? 0} ${d.weight ?? 0} ${d.port} ${lower(d.target)}`;
    case 'SOA':
      return `SOA ${lower(d.mname)} ${lower(d.rname)} ${d.serial} ${d.refresh} ${d.retry} ${d.expire} ${d.minimum}`;
    case 'TXT':
      return `TXT ${(d as Buffer[]).map(txtString).join(' ')}`;
    default:
      throw new Error(`no expectation for ${a.type}`);
  }
}

const ANSWERS: dnsPacket.Answer[] = [
  { type: 'CNAME', name: 'www.Example.com', data: 'Edge.Example.NET' },
  { type: 'CNAME', name: 'edge.example.net', data: 'e1.cdn.example.org' },
  { type: 'A', name: 'e1.cdn.example.org', data: '192.0.2.1' },
  { type: 'A', name: 'e1.cdn.example.org', data: '198.51.100.255' },
  { type: 'AAAA', name: 'e1.cdn.example.org', data: '2001:db8::1' },
  { type: 'AAAA', name: 'e1.cdn.example.org', data: '::ffff:192.0.2.1' },
  { type: 'MX', name: 'example.com', data: { preference: 10, exchange: 'mx.example.com' } },
  {
    type: 'SRV',
    name: '_sip._tcp.example.com',
    data: { priority: 1, weight: 2, port: 5060, target: 'sip.example.com' },
  },
  {
    type: 'SOA',
    name: 'example.com',
    data: {
      mname: 'ns1.example.com',
      rname: 'host\\.master.example.com',
      serial: 4294967295,
      refresh: 7200,
      retry: 3600,
      expire: 1209600,
      minimum: 300,
    },
  },
  { type: 'TXT', name: 'example.com', data: ['v=spf1 -all', 'semi;colon "q" back\\slash \u0001'] },
  { type: 'NS', name: 'example.com', data: 'ns1.example.com' },
  { type: 'PTR', name: '1.2.0.192.in-addr.arpa', data: 'host.example.com' },
  { type: 'DNAME', name: 'old.example', data: 'new.example' },
];

describe('answers text vs dns-packet', () => {
  test('every decoded type, CNAME chain in wire order, names compressed by dns-packet', () => {
    const msg = dnsPacket.encode({
      type: 'response',
      id: 7,
      flags: dnsPacket.RECURSION_DESIRED,
      questions: [{ type: 'A', name: 'www.example.com' }],
      answers: ANSWERS,
    });
    const decoded = dnsPacket.decode(msg);
    const v = parse(msg);
    const text = answersText(msg, v);
    assert.deepEqual(entriesOf(text), (decoded.answers ?? []).map(expectedEntry));
    assert.match(text, /^CNAME edge\.example\.net;CNAME e1\.cdn\.example\.org;A 192\.0\.2\.1;/);
  });

  test('types without a decoder, and RDATA that does not decode as its type: RFC 3597 \\# LENGTH HEX', () => {
    const caa = dnsPacket.encode({
      type: 'response',
      questions: [{ type: 'CAA', name: 'example.com' }],
      answers: [{ type: 'CAA', name: 'example.com', data: { flags: 0, tag: 'issue', value: 'ca.example' } }],
    });
    const hex = caa.subarray(caa.length - 18).toString('hex'); // RDATA: 1 + 1 + 5 + 10 bytes... checked below
    const t = answersText(caa, parse(caa));
    assert.match(t, /^CAA \\# 17 [0-9a-f]{34}$/);
    assert.equal(t.slice(-34), hex.slice(2));
    // An A record with 5 bytes, an MX cut short, a CNAME with a trailing byte after its name.
    const bad = new DnsBuilder()
      .header({ qr: true, qdcount: 1, ancount: 4 })
      .question('x.test')
      .dotted('x.test')
      .rrBody(1, 1, 60, [1, 2, 3, 4, 5])
      .dotted('x.test')
      .rrBody(15, 1, 60, [0, 10])
      .dotted('x.test')
      .rrBody(5, 1, 60, [1, 0x61, 0, 0xff])
      .dotted('x.test')
      .rrBody(99, 1, 60, [])
      .build();
    assert.equal(
      answersText(bad, parse(bad)),
      'A \\# 5 0102030405;MX \\# 2 000a;CNAME \\# 4 016100ff;SPF \\# 0',
    );
  });

  test('hostile names in RDATA: forward pointer, self pointer, pointer into the header -> generic, no throw', () => {
    for (const target of [0xffff & 0x3fff, 2, 12 + 20]) {
      const at = 12 + 12 + 8 + 10; // header, question (x.test: 8 + 4), owner, fixed part: the RDATA offset
      const ptr = target === 12 + 20 ? at : target;
      const msg = new DnsBuilder()
        .header({ qr: true, qdcount: 1, ancount: 1 })
        .question('x.test')
        .dotted('x.test')
        .rrBody(5, 1, 60, [0xc0 | (ptr >> 8), ptr & 0xff])
        .build();
      assert.equal(msg.length, at + 2);
      assert.match(answersText(msg, parse(msg)), /^CNAME \\# 2 [0-9a-f]{4}$/, `pointer to ${ptr}`);
    }
  });

  test('bounded: cut before the entry that does not fit, "..." as the last entry, counted', () => {
    const answers: dnsPacket.Answer[] = [];
    for (let i = 0; i < 200; i++)
      answers.push({ type: 'A', name: 'many.example', data: `10.0.${i >> 8}.${i & 255}` });
    const msg = dnsPacket.encode({
      type: 'response',
      questions: [{ type: 'A', name: 'many.example' }],
      answers,
    });
    const w = new AnswersWriter(100);
    const dst = Buffer.alloc(100 + ANSWERS_TEXT_SLACK);
    const text = dst.toString('latin1', 0, w.write(msg, parse(msg), dst, 0));
    assert.ok(text.length <= 100, `${text.length}`);
    const entries = text.split(';');
    assert.equal(entries.at(-1), '...');
    assert.deepEqual(
      entries.slice(0, -1),
      answers.slice(0, entries.length - 1).map((a) => `A ${(a as { data: string }).data}`),
    );
    assert.equal(w.truncated, 1);
    // Exactly at the bound: no cut; one byte less: cut.
    const some = dnsPacket.encode({
      type: 'response',
      questions: [{ type: 'A', name: 'many.example' }],
      answers: answers.slice(0, 60),
    });
    const exact = answersText(some, parse(some));
    assert.equal(exact.split(';').length, 60);
    const room = Buffer.alloc(1024 + ANSWERS_TEXT_SLACK);
    assert.equal(new AnswersWriter(exact.length).write(some, parse(some), room, 0), exact.length);
    const cut = new AnswersWriter(exact.length - 1);
    assert.ok(room.toString('latin1', 0, cut.write(some, parse(some), room, 0)).endsWith(';...'));
    assert.equal(cut.truncated, 1);
    // The bound cannot exceed the default: callers size their buffers for it.
    assert.throws(() => new AnswersWriter(1025), RangeError);
    assert.throws(() => new AnswersWriter(2), RangeError);
  });

  test('a 64 KiB TXT RR does not overrun the room past the bound', () => {
    const strings: Buffer[] = [];
    for (let i = 0; i < 255; i++) strings.push(Buffer.alloc(255, 0x01)); // \001 each: 4 bytes per byte
    const msg = dnsPacket.encode({
      type: 'response',
      questions: [{ type: 'TXT', name: 'big.example' }],
      answers: [{ type: 'TXT', name: 'big.example', data: strings }],
    });
    const w = new AnswersWriter(1024);
    const dst = Buffer.alloc(1024 + ANSWERS_TEXT_SLACK + 16, 0xee);
    const end = w.write(msg, parse(msg), dst, 0);
    assert.equal(dst.toString('latin1', 0, end), '...');
    assert.equal(dst[1024 + ANSWERS_TEXT_SLACK], 0xee, 'nothing written past the room');
    assert.equal(w.truncated, 1);
  });

  test('no answer text when the answer section was not walked (cut short) or is empty', () => {
    const msg = dnsPacket.encode({
      type: 'response',
      questions: [{ type: 'A', name: 'a.example' }],
      answers: [{ type: 'A', name: 'a.example', data: '192.0.2.1' }],
    });
    const cut = msg.subarray(0, msg.length - 2);
    const v = new DnsView();
    assert.equal(tryParseDnsMessage(cut, 0, cut.length, v), 'DNS_TRUNCATED');
    assert.equal(v.answersOff, -1);
    assert.equal(answersText(cut, v), '');
    const q = dnsPacket.encode({ type: 'query', questions: [{ type: 'A', name: 'a.example' }] });
    assert.equal(answersText(q, parse(q)), '');
  });

  test('the message may sit inside a larger buffer (dnstap frame): offsets are absolute', () => {
    const msg = dnsPacket.encode({
      type: 'response',
      questions: [{ type: 'A', name: 'a.example' }],
      answers: ANSWERS.slice(0, 3),
    });
    const frame = Buffer.concat([Buffer.from([9, 9, 9]), msg, Buffer.from([0xc0, 0x00])]);
    const v = new DnsView();
    parseDnsMessage(frame, 3, 3 + msg.length, v);
    assert.equal(answersText(frame, v), answersText(msg, parse(msg)));
  });
});

describe('header flags and opcode vs dns-packet', () => {
  test('all 256 combinations of QR AA TC RD RA Z AD CD', () => {
    const words: [string, keyof dnsPacket.DecodedPacket][] = [
      ['qr', 'flag_qr' as keyof dnsPacket.DecodedPacket],
      ['aa', 'flag_aa' as keyof dnsPacket.DecodedPacket],
      ['tc', 'flag_tc' as keyof dnsPacket.DecodedPacket],
      ['rd', 'flag_rd' as keyof dnsPacket.DecodedPacket],
      ['ra', 'flag_ra' as keyof dnsPacket.DecodedPacket],
      ['z', 'flag_z' as keyof dnsPacket.DecodedPacket],
      ['ad', 'flag_ad' as keyof dnsPacket.DecodedPacket],
      ['cd', 'flag_cd' as keyof dnsPacket.DecodedPacket],
    ];
    const bits = [0x8000, 0x0400, 0x0200, 0x0100, 0x0080, 0x0040, 0x0020, 0x0010];
    for (let k = 0; k < 256; k++) {
      let flags = 0;
      for (let i = 0; i < 8; i++) if (k & (1 << i)) flags |= bits[i]!;
      const msg = new DnsBuilder().header({ qdcount: 1 }).question('f.test').build();
      msg.writeUInt16BE(flags | 0x2800 /* opcode 5 */, 2);
      const d = dnsPacket.decode(msg) as unknown as Record<string, unknown>;
      const expected = words
        .filter(([, f]) => d[f as string] === true)
        .map(([w]) => w)
        .join(' ');
      const v = parse(msg);
      assert.equal(flagsText(v.flags), expected, `flags 0x${flags.toString(16)}`);
      assert.equal(opcodeName(v.opcode), d.opcode);
    }
  });

  test('EDNS UDP size and DO bit vs dns-packet; absent without OPT', () => {
    for (const [udp, dnssecOk] of [
      [512, false],
      [1232, true],
      [4096, false],
      [65535, true],
      [0, false],
    ] as const) {
      const msg = dnsPacket.encode({
        type: 'query',
        questions: [{ type: 'A', name: 'e.example' }],
        additionals: [
          {
            type: 'OPT',
            name: '.',
            udpPayloadSize: udp,
            flags: dnssecOk ? dnsPacket.DNSSEC_OK : 0,
          } as unknown as dnsPacket.Answer,
        ],
      });
      const opt = dnsPacket.decode(msg).additionals![0] as unknown as {
        udpPayloadSize: number;
        flag_do: boolean;
      };
      const v = parse(msg);
      assert.equal(v.hasOpt, true);
      assert.equal(v.ednsUdpSize, opt.udpPayloadSize);
      assert.equal(v.ednsDo, opt.flag_do);
    }
    const plain = parse(dnsPacket.encode({ type: 'query', questions: [{ type: 'A', name: 'e.example' }] }));
    assert.equal(plain.hasOpt, false);
  });
});
