// parseDnsMessage: the fields Snowtap outputs from one wire-format DNS message (RFC 1035
// §4.1), read lazily into a reused DnsView: header, first question, and the EDNS OPT RR
// (RFC 6891) with its Client Subnet option (RFC 7871). Answer and authority records are
// skipped with bounds checks, never decoded here: the answer section's offset is kept so
// answers.ts renders it only when the `answers` column is written. No allocation per message: tryParseDnsMessage
// returns an error code, parseDnsMessage throws a DnsParseError (allocated, ~1.6 µs).
//
// Partial results: fields are stored as soon as they are read, so when a message is broken
// late (say in the additional section) the header and question parsed before the error stay
// in `out` and remain usable. Field groups are only set once complete:
//   - id, flags, counts: when the 12-byte header is present;
//   - hasQuestion, qtype, qclass, name*: together, once the whole first question is read;
//   - answersOff: once every answer RR was walked in bounds (rendered later by answers.ts);
//   - hasOpt, the extended rcode, ednsUdpSize, ednsDo: once the OPT RR's fixed part is read
//     (before its options);
//   - hasEcs, ecs*: once the ECS option has been validated.
//
// Deliberate strictness (documented differences from lenient decoders such as miekg/dns):
//   - every count in the header must be honoured: a message that ends early is DNS_TRUNCATED;
//   - compression pointers must point backwards, past the header (see name.ts);
//   - an OPT RR with a non-root owner, a second OPT RR (RFC 6891 §6.1.1: FORMERR), options
//     overrunning the RDATA, or a second ECS option are DNS_BAD_OPT;
//   - an ECS option is valid only with FAMILY 1 or 2, prefixes <= 32/128, exactly
//     ceil(SOURCE/8) address octets and zero bits past SOURCE (RFC 7871 §6 says FORMERR);
//     anything else is DNS_BAD_OPT. (miekg/dns also accepts FAMILY 0 with SOURCE 0, which
//     old `dig +subnet=0` sent; we do not.)
// Bytes after the last record are ignored (as miekg/dns does). The extended RCODE is applied
// whenever an OPT RR is present, in queries too.

import { Cursor } from './cursor';
import { type DnsErrorCode, DnsParseError } from './errors';
import { readName, skipName } from './name';
import type { DnsView } from './view';

export const DNS_HEADER_SIZE = 12;
export const TYPE_OPT = 41;
export const EDNS_OPTION_ECS = 8;
export const ECS_FAMILY_IPV4 = 1;
export const ECS_FAMILY_IPV6 = 2;

/** RR fields after the owner name: TYPE, CLASS, TTL, RDLENGTH. */
const RR_FIXED_SIZE = 10;
const ECS_FIXED_SIZE = 4;

// One cursor for all messages: parsing is synchronous, so it is never shared.
const cur = new Cursor();
let lastErrorOffset = -1;

/**
 * Parses buf[start..end) into `out` (which is reset first). Throws DnsParseError on a
 * malformed message, leaving the fields read before the error in `out` (see above).
 * A bad range (a caller bug, not bad input) throws RangeError.
 */
export function parseDnsMessage(buf: Buffer, start: number, end: number, out: DnsView): void {
  const code = tryParseDnsMessage(buf, start, end, out);
  if (code !== null) throw new DnsParseError(code, lastErrorOffset);
}

/**
 * The same without throwing, for the per-record hot path: returns null on success or the
 * error code (`out` holds the fields read before the error). A thrown error costs ~2 µs in
 * V8 whatever it is; a returned code costs nothing, which matters under a garbage flood.
 */
export function tryParseDnsMessage(
  buf: Buffer,
  start: number,
  end: number,
  out: DnsView,
): DnsErrorCode | null {
  if (!(start >= 0 && start <= end && end <= buf.length)) {
    throw new RangeError(`parseDnsMessage: bad range [${start}, ${end}) for a ${buf.length}-byte buffer`);
  }
  out.reset();
  out.size = end - start;
  out.msgStart = start;
  cur.reset(buf, start, end);
  if (end - start < DNS_HEADER_SIZE) cur.fail('DNS_TRUNCATED_HEADER', start);
  else parseBody(out);
  lastErrorOffset = cur.errorOffset;
  const code = cur.error;
  cur.release();
  return code;
}

function parseBody(out: DnsView): void {
  out.id = cur.u16();
  const flags = (out.flags = cur.u16());
  out.isResponse = (flags & 0x8000) !== 0;
  out.opcode = (flags >> 11) & 0xf;
  out.rcode = flags & 0xf;
  const qdcount = (out.qdcount = cur.u16());
  const ancount = (out.ancount = cur.u16());
  const nscount = (out.nscount = cur.u16());
  const arcount = (out.arcount = cur.u16());

  if (qdcount > 0) {
    if (!readName(cur, out)) return;
    if (cur.remaining() < 4) {
      out.nameLen = 0;
      out.labelCount = 0;
      cur.fail('DNS_TRUNCATED', cur.pos);
      return;
    }
    out.qtype = cur.u16();
    out.qclass = cur.u16();
    out.hasQuestion = true;
    for (let i = 1; i < qdcount; i++) {
      if (!skipName(cur) || !cur.advance(4)) return;
    }
  }

  const answersAt = cur.pos;
  for (let i = ancount; i > 0; i--) {
    if (!skipName(cur) || !cur.advance(RR_FIXED_SIZE - 2) || !cur.advance(cur.u16())) return;
  }
  out.answersOff = answersAt;
  for (let i = nscount; i > 0; i--) {
    if (!skipName(cur) || !cur.advance(RR_FIXED_SIZE - 2) || !cur.advance(cur.u16())) return;
  }

  const buf = cur.buf;
  for (let i = 0; i < arcount; i++) {
    const ownerAt = cur.pos;
    const ownerIsRoot = ownerAt < cur.end && buf[ownerAt] === 0;
    if (!skipName(cur) || !cur.need(RR_FIXED_SIZE)) return;
    const type = (buf[cur.pos] << 8) | buf[cur.pos + 1];
    if (type !== TYPE_OPT) {
      cur.pos += RR_FIXED_SIZE - 2;
      if (!cur.advance(cur.u16())) return;
      continue;
    }
    if (!ownerIsRoot || out.hasOpt) {
      cur.fail('DNS_BAD_OPT', ownerAt);
      return;
    }
    // TYPE, CLASS (the requestor's UDP payload size), then the TTL: EXTENDED-RCODE (upper
    // 8 bits of the 12-bit RCODE), VERSION, DO/Z flags.
    const extended = buf[cur.pos + 4];
    out.ednsUdpSize = (buf[cur.pos + 2] << 8) | buf[cur.pos + 3];
    out.ednsDo = (buf[cur.pos + 6] & 0x80) !== 0;
    cur.pos += RR_FIXED_SIZE - 2;
    out.rcode = (extended << 4) | (flags & 0xf);
    out.hasOpt = true;
    const rdlength = cur.u16();
    if (!cur.need(rdlength) || !parseOptions(out, cur.pos + rdlength)) return;
  }
}

/** Walks the EDNS options in cur.pos..rdataEnd (already bounds-checked), leaving cur.pos at rdataEnd. */
function parseOptions(out: DnsView, rdataEnd: number): boolean {
  const buf = cur.buf;
  let pos = cur.pos;
  while (pos < rdataEnd) {
    if (rdataEnd - pos < 4) return cur.fail('DNS_BAD_OPT', pos);
    const code = (buf[pos] << 8) | buf[pos + 1];
    const len = (buf[pos + 2] << 8) | buf[pos + 3];
    const data = pos + 4;
    if (rdataEnd - data < len) return cur.fail('DNS_BAD_OPT', pos);
    if (code === EDNS_OPTION_ECS && (out.hasEcs || !parseEcs(out, buf, data, len))) {
      return cur.fail('DNS_BAD_OPT', pos);
    }
    pos = data + len;
  }
  cur.pos = rdataEnd;
  return true;
}

/** RFC 7871 §6: FAMILY, SOURCE PREFIX-LENGTH, SCOPE PREFIX-LENGTH, ADDRESS (truncated). */
function parseEcs(out: DnsView, buf: Buffer, data: number, len: number): boolean {
  if (len < ECS_FIXED_SIZE) return false;
  const family = (buf[data] << 8) | buf[data + 1];
  const source = buf[data + 2];
  const scope = buf[data + 3];
  const maxBits = family === ECS_FAMILY_IPV4 ? 32 : family === ECS_FAMILY_IPV6 ? 128 : 0;
  const addrLen = len - ECS_FIXED_SIZE;
  // ADDRESS holds exactly ceil(SOURCE/8) octets and bits past SOURCE are zero (§6: FORMERR).
  if (maxBits === 0 || source > maxBits || scope > maxBits || addrLen !== (source + 7) >> 3) return false;
  const addr = data + ECS_FIXED_SIZE;
  if (source & 7 && (buf[addr + addrLen - 1] & (0xff >> (source & 7))) !== 0) return false;
  const dst = out.ecsAddress;
  for (let i = 0; i < 16; i++) dst[i] = i < addrLen ? buf[addr + i] : 0;
  out.ecsFamily = family;
  out.ecsSourcePrefix = source;
  out.ecsScopePrefix = scope;
  out.ecsOptionOff = data - 4;
  out.hasEcs = true;
  return true;
}
