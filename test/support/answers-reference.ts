// Frozen copy of the answers renderer (proto/dns/answers.ts) and of the IPv4 text as they
// were before the issue 11 step 6 speed-ups (A/AAAA fast path, table-driven IPv4 digits):
// the differential test (test/unit/render-differential.test.ts) holds the optimised code to
// these, byte for byte. Deliberately plain: do not optimise this file.

import { Cursor } from '../../proto/dns/cursor';
import { qtypeBytes } from '../../proto/dns/mnemonics';
import { skipName, writeNameText } from '../../proto/dns/name';
import type { DnsView } from '../../proto/dns/view';
import { writeIpv6Text, writeSmallDecimal } from '../../proto/net/ip-text';

/** The IPv4 text as it was written before the table-driven version. */
export function referenceIpv4Text(a: Uint8Array, off: number, dst: Buffer, pos: number): number {
  for (let i = 0; i < 4; i++) {
    if (i > 0) dst[pos++] = 0x2e;
    pos = writeSmallDecimal(a[off + i]!, dst, pos);
  }
  return pos;
}
const writeIpv4Text = referenceIpv4Text;

const TYPE_A = 1;
const TYPE_NS = 2;
const TYPE_CNAME = 5;
const TYPE_SOA = 6;
const TYPE_PTR = 12;
const TYPE_MX = 15;
const TYPE_TXT = 16;
const TYPE_AAAA = 28;
const TYPE_SRV = 33;
const TYPE_DNAME = 39;

const SPACE = 0x20;
const SEMI = 0x3b;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const DIGIT0 = 0x30;
const HEX = Buffer.from('0123456789abcdef', 'latin1');
const GENERIC = Buffer.from('\\# ', 'latin1');
const ELLIPSIS = 3; // "..."

// Two cursors: one walks the RRs, one reads names inside an RDATA (bounded by its end).
const rr = new Cursor();
const rd = new Cursor();

function writeDecimal(dst: Buffer, o: number, n: number): number {
  if (n === 0) {
    dst[o++] = DIGIT0;
    return o;
  }
  let digits = 0;
  for (let t = n; t > 0; t = Math.floor(t / 10)) digits++;
  for (let i = o + digits - 1; i >= o; i--) {
    dst[i] = DIGIT0 + (n % 10);
    n = Math.floor(n / 10);
  }
  return o + digits;
}

function copy(dst: Buffer, o: number, src: Buffer): number {
  for (let i = 0; i < src.length; i++) dst[o + i] = src[i]!;
  return o + src.length;
}

/** Reads one name in RDATA at rd.pos; -1 when it does not decode. */
function rdName(dst: Buffer, o: number): number {
  return writeNameText(rd, dst, o);
}

/** writeRdata() result when the text would pass its limit (TXT can be 4 x 64 KiB). */
const TOO_LONG = -2;

/**
 * RDATA of a type we decode, at rdStart..rdEnd; -1 when it does not decode as that type,
 * TOO_LONG when a TXT text would pass `limit`.
 */
function writeRdata(
  type: number,
  buf: Buffer,
  msgStart: number,
  rdStart: number,
  rdEnd: number,
  dst: Buffer,
  o: number,
  limit: number,
): number {
  const len = rdEnd - rdStart;
  switch (type) {
    case TYPE_A:
      return len === 4 ? writeIpv4Text(buf, rdStart, dst, o) : -1;
    case TYPE_AAAA:
      return len === 16 ? writeIpv6Text(buf, rdStart, dst, o) : -1;
    case TYPE_TXT:
      return writeTxt(buf, rdStart, rdEnd, dst, o, limit);
    case TYPE_NS:
    case TYPE_CNAME:
    case TYPE_PTR:
    case TYPE_DNAME:
    case TYPE_MX:
    case TYPE_SRV:
    case TYPE_SOA:
      break;
    default:
      return -1;
  }
  // Names in RDATA: bounded by the RDATA's end; pointers may reach back into the message.
  rd.reset(buf, msgStart, rdEnd);
  rd.pos = rdStart;
  if (type === TYPE_MX) {
    if (len < 3) return -1;
    o = writeDecimal(dst, o, rd.u16());
    dst[o++] = SPACE;
  } else if (type === TYPE_SRV) {
    if (len < 7) return -1;
    for (let i = 0; i < 3; i++) {
      o = writeDecimal(dst, o, rd.u16());
      dst[o++] = SPACE;
    }
  }
  o = rdName(dst, o);
  if (o < 0) return -1;
  if (type === TYPE_SOA) {
    dst[o++] = SPACE;
    o = rdName(dst, o);
    if (o < 0 || rdEnd - rd.pos !== 20) return -1;
    for (let i = 0; i < 5; i++) {
      dst[o++] = SPACE;
      o = writeDecimal(dst, o, rd.u32());
    }
  }
  return rd.pos === rdEnd ? o : -1;
}

// How each TXT byte is written: 0 = as is, 1 = "\\" + byte, 2 = "\\DDD".
const TXT_KIND = new Uint8Array(256);
for (let b = 0; b < 256; b++) {
  if (b < 0x20 || b > 0x7e) TXT_KIND[b] = 2;
  else if (b === QUOTE || b === BACKSLASH || b === SEMI) TXT_KIND[b] = 1;
}

/** TXT: each <character-string> quoted; \" \\ \; and \DDD outside printable ASCII. */
function writeTxt(buf: Buffer, p: number, end: number, dst: Buffer, o: number, limit: number): number {
  if (p === end) return -1;
  const start = o;
  while (p < end) {
    const n = buf[p++]!;
    if (end - p < n) return -1;
    // One string adds at most 4 x 255 + 3 bytes: stop before passing the limit.
    if (o > limit) return TOO_LONG;
    if (o > start) dst[o++] = SPACE;
    dst[o++] = QUOTE;
    for (const stop = p + n; p < stop; p++) {
      const b = buf[p]!;
      const kind = TXT_KIND[b]!;
      if (kind === 0) dst[o++] = b;
      else if (kind === 1) {
        dst[o++] = BACKSLASH;
        dst[o++] = b;
      } else {
        dst[o++] = BACKSLASH;
        dst[o++] = DIGIT0 + ((b / 100) | 0);
        dst[o++] = DIGIT0 + (((b / 10) | 0) % 10);
        dst[o++] = DIGIT0 + (b % 10);
      }
    }
    dst[o++] = QUOTE;
  }
  return o;
}

/** Writes the answer text; counts truncations and answer sections it could not walk. */
export class ReferenceAnswersWriter {
  /** Texts cut at maxBytes (the "..." entry written). */
  truncated = 0;

  constructor(readonly maxBytes: number) {}

  /**
   * Writes the answers of the message parsed into `view` (from `buf`) at dst[o..], which
   * has maxBytes + ANSWERS_TEXT_SLACK bytes of room. Returns the end position; nothing is
   * written when the answer section was not walked completely by the parser (answersOff < 0)
   * or is empty. The text is ASCII and may hold `"` `\` `,` (the caller quotes it for CSV).
   */
  write(buf: Buffer, view: DnsView, dst: Buffer, o: number): number {
    if (view.answersOff < 0 || view.ancount === 0) return o;
    const msgEnd = view.msgStart + view.size;
    rr.reset(buf, view.msgStart, msgEnd);
    rr.pos = view.answersOff;
    const limit = o + this.maxBytes;
    const first = o;
    for (let i = 0; i < view.ancount; i++) {
      // The parser walked these RRs in bounds already; the checks stay (defence in depth).
      if (!skipName(rr) || !rr.need(10)) break;
      const type = rr.u16();
      rr.pos += 6; // CLASS, TTL
      const rdlen = rr.u16();
      const rdStart = rr.pos;
      if (!rr.advance(rdlen)) break;
      const entry = o;
      if (o > first) dst[o++] = SEMI;
      o = copy(dst, o, qtypeBytes(type));
      dst[o++] = SPACE;
      const mark = o;
      // Generic entries are sized before they are written (RDATA may be 64 KiB).
      const genericLen = GENERIC.length + 5 + 1 + 2 * rdlen;
      let end = writeRdata(type, buf, view.msgStart, rdStart, rdStart + rdlen, dst, o, limit);
      if (end === TOO_LONG) end = limit + 1;
      else if (end < 0) {
        if (mark + genericLen > limit) end = limit + 1;
        else {
          end = copy(dst, mark, GENERIC);
          end = writeDecimal(dst, end, rdlen);
          if (rdlen > 0) dst[end++] = SPACE;
          for (let k = rdStart; k < rdStart + rdlen; k++) {
            const b = buf[k]!;
            dst[end++] = HEX[b >> 4]!;
            dst[end++] = HEX[b & 15]!;
          }
        }
      }
      // Room for this entry and, if more follow, a ";..." after it.
      const reserve = i + 1 < view.ancount ? 1 + ELLIPSIS : 0;
      if (end + reserve > limit) {
        o = entry;
        if (o > first) dst[o++] = SEMI;
        dst[o++] = 0x2e;
        dst[o++] = 0x2e;
        dst[o++] = 0x2e;
        this.truncated++;
        break;
      }
      o = end;
    }
    rr.release();
    rd.release();
    return o;
  }
}
