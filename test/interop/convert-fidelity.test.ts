// Fidelity against reference decoders we did not write: every fixture (real captures from
// unbound, BIND, Knot, kresd, dnsdist, pdns-recursor, kdig) is converted by `snowtap convert`
// code and compared frame by frame with the Go `dnstap -y` CLI (miekg/dns inside), and the
// frame count with `dnstap-ldns -r`. Zero mismatches allowed. The columns appended by issue 9
// step 4 are compared too: flags, opcode, EDNS UDP size / DO, answers (every RR's type, and
// the RDATA of the types we decode) and query_zone with the Go CLI; flags, opcode, EDNS and
// answers again with dns-packet on the DNS message taken from the frame (protobufjs decode).
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { SocketAddress } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import * as dnsPacket from 'dns-packet';
import { silentLogger } from '../../common/log';
import { convertFiles } from '../../enricher/convert';
import { Dnstap } from '../../proto/dnstap/schema';
import { walkFrames } from '../support/dnstap-frames';
import { parseChunk } from '../support/output-rows';
import { FIXTURES_DIR, requireInterop } from '../support/peers';
import { dnstapLdnsCount, type GoFrame, goDnstapFrames } from '../support/reference-decoders';

const FIXTURES = readdirSync(FIXTURES_DIR)
  .filter((f) => f.endsWith('.fstrm'))
  .sort();

/** Go prints names absolute, case as on the wire; ours are lower-cased without the trailing dot. */
function goName(name: string): string {
  if (name === '.') return '.';
  // Lower-case A-Z only (escapes like \065 stay as they are; they are digits).
  return name.replace(/\.$/, '').replace(/[A-Z]/g, (c) => c.toLowerCase());
}

// Mnemonics where miekg/dns 1.1.50 and Snowtap differ on purpose (documented in proto/dns/mnemonics.ts).
const QTYPE_ALIASES: Record<string, string> = { None: 'TYPE0' };
const QCLASS_ALIASES: Record<string, string> = { CLASS255: 'ANY' };
const RCODE_ALIASES: Record<string, string> = { BADSIG: 'BADVERS' };

function goTime(sec: number | undefined, nsec: number | undefined): string | undefined {
  if (sec === undefined) return undefined;
  const iso = new Date(sec * 1000).toISOString().slice(0, 19);
  return `${iso}.${String(nsec ?? 0).padStart(9, '0')}Z`;
}

function expectedEventTime(g: GoFrame): string {
  const response = g.type?.endsWith('_RESPONSE') ?? false;
  const q = goTime(g.queryTimeSec, g.queryTimeNsec);
  const r = goTime(g.responseTimeSec, g.responseTimeNsec);
  return (response ? (r ?? q) : (q ?? r)) ?? '';
}

/** Entries of our answers text: split on ";" not escaped by a backslash. */
function entriesOf(text: string): string[] {
  if (text === '') return [];
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

/** The entry we expect for a Go answer line, or only its type for RDATA we print generically. */
function goAnswer(type: string, rdata: string): { type: string; text?: string } {
  const f = rdata.split(' ');
  switch (type) {
    case 'A':
      return { type, text: `A ${rdata}` };
    case 'AAAA':
      return { type, text: `AAAA ${rdata}` };
    case 'CNAME':
    case 'NS':
    case 'PTR':
    case 'DNAME':
      return { type, text: `${type} ${goName(rdata)}` };
    case 'MX':
      return { type, text: `MX ${f[0]} ${goName(f[1]!)}` };
    case 'SRV':
      return { type, text: `SRV ${f[0]} ${f[1]} ${f[2]} ${goName(f[3]!)}` };
    case 'SOA':
      return { type, text: `SOA ${goName(f[0]!)} ${goName(f[1]!)} ${f.slice(2).join(' ')}` };
    case 'TXT':
      // miekg leaves ";" alone inside TXT strings; we escape it (our entry separator).
      return { type, text: `TXT ${rdata.replace(/;/g, '\\;')}` };
    default:
      return { type };
  }
}

function compareAppended(g: GoFrame, row: Record<string, string>): string[] {
  const out: string[] = [];
  const eq = (field: string, ours: string, theirs: string) => {
    if (ours !== theirs) out.push(`${field}: ours=${JSON.stringify(ours)} go=${JSON.stringify(theirs)}`);
  };
  eq('query_zone', row.query_zone!, g.queryZone === undefined ? '' : goName(g.queryZone));
  // The Go CLI (golang-dnstap 0.4.0) does not print Message.policy; no fixture carries one.
  for (const c of ['type', 'rule', 'action', 'match', 'value'])
    eq(`dnstap_policy_${c}`, row[`dnstap_policy_${c}`]!, '');
  const msg = g.dnsFrom === 'query' ? g.queryMessage : g.responseMessage;
  if (msg === undefined || g.dnsError !== undefined) return out;
  eq('flags', row.flags!, msg.flags.join(' '));
  if (msg.opcode !== '') eq('opcode', row.opcode!, msg.opcode);
  else if (!/^OPCODE\d+$/.test(row.opcode!)) out.push(`opcode: ours=${row.opcode} go=(no mnemonic)`);
  const edns = msg.edns === undefined ? undefined : /flags: ([a-z ]*); udp: (\d+)/.exec(msg.edns);
  eq('edns_udp_size', row.edns_udp_size!, edns?.[2] ?? '');
  eq('edns_do', row.edns_do!, edns === undefined ? '' : String(edns![1]!.split(' ').includes('do')));
  const ours = entriesOf(row.answers!);
  if (ours.length !== msg.answers.length) {
    out.push(`answers: ${ours.length} entries, go ${msg.answers.length}: ${row.answers}`);
    return out;
  }
  msg.answers.forEach((a, i) => {
    const want = goAnswer(a.type, a.rdata);
    // Go prints IPv4-mapped IPv6 as plain IPv4; we keep ::ffff:a.b.c.d (RFC 5952 §5).
    const mine = ours[i]!.replace(/^AAAA ::ffff:(\d+\.\d+\.\d+\.\d+)$/, 'AAAA $1');
    if (want.text !== undefined) eq(`answers[${i}]`, mine, want.text);
    else eq(`answers[${i}] type`, mine.slice(0, mine.indexOf(' ')), want.type);
  });
  return out;
}

/** flags, opcode, EDNS and answers against dns-packet, on the frame's chosen DNS message. */
function compareDnsPacket(frame: Buffer, row: Record<string, string>): string[] {
  const out: string[] = [];
  // biome-ignore lint/suspicious/noExplicitAny: a protobufjs reflection message
  const m = (Dnstap.decode(frame) as any).message;
  if (!m) return out;
  // Absent bytes fields read as the prototype default: presence is an own property.
  const own = (k: string): Uint8Array | undefined => (Object.hasOwn(m, k) ? m[k] : undefined);
  const q = own('queryMessage');
  const r = own('responseMessage');
  const bytes = m.type % 2 === 0 ? (r ?? q) : (q ?? r);
  if (bytes === undefined) return out;
  let d: dnsPacket.DecodedPacket;
  try {
    d = dnsPacket.decode(Buffer.from(bytes));
  } catch {
    return out; // dns-packet cannot decode it: the Go comparison covers it
  }
  const eq = (field: string, ours: string, theirs: string) => {
    if (ours !== theirs)
      out.push(`${field}: ours=${JSON.stringify(ours)} dns-packet=${JSON.stringify(theirs)}`);
  };
  const rec = d as unknown as Record<string, unknown>;
  const words = ['qr', 'aa', 'tc', 'rd', 'ra', 'z', 'ad', 'cd'].filter((w) => rec[`flag_${w}`] === true);
  eq('flags', row.flags!, words.join(' '));
  eq('opcode', row.opcode!, String(rec.opcode));
  const opt = (d.additionals ?? []).find((a) => a.type === 'OPT') as unknown as
    | { udpPayloadSize: number; flag_do: boolean }
    | undefined;
  eq('edns_udp_size', row.edns_udp_size!, opt === undefined ? '' : String(opt.udpPayloadSize));
  eq('edns_do', row.edns_do!, opt === undefined ? '' : String(opt.flag_do));
  const ours = entriesOf(row.answers!);
  const theirs = d.answers ?? [];
  eq('answers count', String(ours.length), String(theirs.length));
  theirs.forEach((a, i) => {
    const mine = ours[i] ?? '';
    // biome-ignore lint/suspicious/noExplicitAny: dns-packet's data union per type
    const data = (a as any).data;
    if (a.type === 'A') eq(`answers[${i}]`, mine, `A ${data}`);
    else if (a.type === 'AAAA')
      eq(`answers[${i}]`, mine, `AAAA ${new SocketAddress({ address: data, family: 'ipv6' }).address}`);
    else if (a.type === 'CNAME') eq(`answers[${i}]`, mine, `CNAME ${goName(`${data}.`)}`);
    else eq(`answers[${i}] type`, mine.slice(0, mine.indexOf(' ')), String(a.type));
  });
  return out;
}

function compare(g: GoFrame, row: Record<string, string>): string[] {
  const out: string[] = [];
  const eq = (field: string, ours: string, theirs: string) => {
    if (ours !== theirs) out.push(`${field}: ours=${JSON.stringify(ours)} go=${JSON.stringify(theirs)}`);
  };
  eq('message_type', row.message_type!, g.type ?? '');
  eq('family', row.family!, g.socketFamily ?? '');
  eq('protocol', row.protocol!, g.socketProtocol ?? '');
  // Go prints IPv4-mapped IPv6 addresses as plain IPv4; we keep ::ffff:a.b.c.d (RFC 5952 §5).
  const addr = (s: string) => s.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, '$1');
  eq('query_address', addr(row.query_address!), g.queryAddress ?? '');
  eq('response_address', addr(row.response_address!), g.responseAddress ?? '');
  eq('query_port', row.query_port!, g.queryPort === undefined ? '' : String(g.queryPort));
  eq('response_port', row.response_port!, g.responsePort === undefined ? '' : String(g.responsePort));
  eq('event_time', row.event_time!, expectedEventTime(g));
  if (g.dnsFrom !== undefined && g.dnsError === undefined) {
    eq('qname', row.qname!, g.qname === undefined ? '' : goName(g.qname));
    eq('qtype', row.qtype!, g.qtype === undefined ? '' : (QTYPE_ALIASES[g.qtype] ?? g.qtype));
    eq('qclass', row.qclass!, g.qclass === undefined ? '' : (QCLASS_ALIASES[g.qclass] ?? g.qclass));
    if (g.rcode !== '') eq('rcode', row.rcode!, RCODE_ALIASES[g.rcode ?? ''] ?? g.rcode ?? '');
    else if (!/^RCODE\d+$/.test(row.rcode!)) out.push(`rcode: ours=${row.rcode} go=(no mnemonic)`);
    eq('dns_id', row.dns_id!, String(g.id));
  }
  return out;
}

for (const name of FIXTURES) {
  test(`fidelity vs Go dnstap and dnstap-ldns: ${name}`, async (t) => {
    if (!requireInterop(t, ['dnstap', 'dnstap-ldns'])) return;
    const file = path.join(FIXTURES_DIR, name);
    const dir = mkdtempSync(path.join(tmpdir(), 'snowtap-fidelity-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const summary = await convertFiles({
      files: [file],
      output: {
        outputDir: dir,
        enricherId: 'fidelity',
        maxRows: 1e9,
        maxBytes: 1e12,
        maxAgeMs: 3.6e6,
        gzip: false,
      },
      policy: null,
      log: silentLogger(),
    });
    const rows = (await Promise.all(summary.chunkPaths.map(parseChunk))).flat();
    const go = await goDnstapFrames(file);
    const ldns = await dnstapLdnsCount(file);
    assert.equal(summary.failedFiles, 0);
    assert.equal(rows.length, go.length, 'row count equals the Go CLI frame count');
    assert.equal(summary.frames, ldns, 'frame count equals dnstap-ldns');
    rows.sort((a, b) => Number(a.record_id!.split('/')[2]) - Number(b.record_id!.split('/')[2]));
    const frames = walkFrames(readFileSync(file));
    assert.equal(frames.length, go.length);
    const mismatches: string[] = [];
    let dnsCompared = 0;
    let answersCompared = 0;
    for (let i = 0; i < go.length; i++) {
      const g = go[i]!;
      const row = rows[i]!;
      assert.equal(Number(row.record_id!.split('/')[2]), g.index);
      if (g.dnsFrom !== undefined && g.dnsError === undefined) dnsCompared++;
      if (row.answers !== '') answersCompared++;
      for (const m of compare(g, row)) mismatches.push(`frame ${g.index}: ${m}`);
      for (const m of compareAppended(g, row)) mismatches.push(`frame ${g.index}: ${m}`);
      for (const m of compareDnsPacket(frames[i]!, row)) mismatches.push(`frame ${g.index}: ${m}`);
    }
    t.diagnostic(
      `${name}: ${rows.length} frames compared, ${dnsCompared} with DNS fields, ${answersCompared} with answers, ${mismatches.length} mismatches`,
    );
    assert.deepEqual(mismatches.slice(0, 20), []);
    assert.ok(dnsCompared > 0 || go.length === 0);
  });
}
