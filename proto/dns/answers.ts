// The header flags, and the answer section as compact text, written straight into an output
// buffer and only when those columns are written: the parser (parser.ts) leaves the answer
// section's offset in the DnsView and this walks it again, lazily, with bounds checks.
//
// Flags: the set bits among QR AA TC RD RA Z AD CD as lower-case words in that order,
// separated by one space ("qr aa rd ra") - the `;; flags:` text of dig and of miekg/dns (the
// reference `dnstap` CLI), so one column answers "was it authoritative / truncated / DNSSEC
// validated" with CONTAINS(flags, 'ad') and stays short.
//
// Answers: one entry per answer RR in wire order (so a CNAME chain reads in order), entries
// separated by ";", each "TYPE rdata" with the type mnemonic (mnemonics.ts) and the RDATA in
// presentation format, without owner, class or TTL:
//   A, AAAA                      address (IPv4 dotted, IPv6 RFC 5952)
//   NS, CNAME, PTR, DNAME        name (lower-cased, RFC 1035 escapes, no trailing dot, as qname)
//   MX                           preference name
//   SRV                          priority weight port target
//   SOA                          mname rname serial refresh retry expire minimum
//   TXT                          "string" "string"... (\" \\ \; and \DDD for bytes outside 0x20-0x7E)
//   everything else, and RDATA that does not decode as its type: RFC 3597 `\# LENGTH HEX`.
// ";" never occurs unescaped inside an entry (names and TXT escape it as "\;"), so splitting
// on every ";" not preceded by an escaping backslash gives the entries back. The text is bounded: when the next entry would pass `maxBytes`, the
// text ends with the entry "..." and the caller counts the truncation.

import { checkInt } from '../kit/options';
import { writeIpv4Text, writeIpv4TextWords, writeIpv6Text } from '../net/ip-text';
import { Cursor } from './cursor';
import { qtypeBytes } from './mnemonics';
import { skipName, writeNameText } from './name';
import type { DnsView } from './view';

/** Default bound on the answers text (bytes, before CSV quoting). */
export const ANSWERS_TEXT_MAX_BYTES = 1024;
/**
 * Room the caller must leave past `maxBytes`: one entry is written before its length is
 * checked (a name-bearing entry is at most a mnemonic, numbers and one or two names).
 */
export const ANSWERS_TEXT_SLACK = 2 * 1024 + 128;

const FLAG_BITS = [0x8000, 0x0400, 0x0200, 0x0100, 0x0080, 0x0040, 0x0020, 0x0010];
const FLAG_WORDS = ['qr', 'aa', 'tc', 'rd', 'ra', 'z', 'ad', 'cd'];
/** Longest flags text: all eight words. */
export const FLAGS_TEXT_MAX_LENGTH = FLAG_WORDS.join(' ').length;

// All 256 combinations pre-encoded, indexed by the flag bits packed into one byte: bits 4-10
// of the header word (CD AD Z RA RD TC AA) as they are, QR (bit 15) on top. Per record: a
// shift, two masks and an array load.
const FLAG_TEXTS: Buffer[] = [];
for (let k = 0; k < 256; k++) {
  const words: string[] = [];
  const word = (k & 0x7f) << 4;
  const flags = word | (k & 0x80 ? 0x8000 : 0);
  for (let i = 0; i < 8; i++) if (flags & FLAG_BITS[i]!) words.push(FLAG_WORDS[i]!);
  FLAG_TEXTS.push(Buffer.from(words.join(' '), 'latin1'));
}

/** The bits of the header flags word as an index into FLAG_TEXTS. */
function flagIndex(flags: number): number {
  return ((flags >> 4) & 0x7f) | ((flags >> 8) & 0x80);
}

/** The flags text (shared bytes: do not modify); empty when no flag is set. */
export function flagsTextBytes(flags: number): Buffer {
  return FLAG_TEXTS[flagIndex(flags)]!;
}

export function flagsText(flags: number): string {
  return flagsTextBytes(flags).toString('latin1');
}

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
const A_PREFIX = Buffer.from('A ', 'latin1');
const A_PREFIX_WORD = 0x41 | (SPACE << 8);
const AAAA_PREFIX = Buffer.from('AAAA ', 'latin1');

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
export class AnswersWriter {
  /** Texts cut at maxBytes (the "..." entry written). */
  truncated = 0;
  /**
   * True when the text of the last write() holds only A and AAAA entries (or "..."): no `"`
   * `,` `\` CR or LF, so a CSV writer may skip scanning it for quoting. False says nothing.
   */
  plain = true;

  constructor(readonly maxBytes = ANSWERS_TEXT_MAX_BYTES) {
    // Callers size their buffers for the default (the row bound depends on it): no larger.
    checkInt('answers maxBytes', maxBytes, 3, ANSWERS_TEXT_MAX_BYTES, (m) => new RangeError(m));
  }

  /**
   * Writes the answers of the message parsed into `view` (from `buf`) at dst[o..], which
   * has maxBytes + ANSWERS_TEXT_SLACK bytes of room. Returns the end position; nothing is
   * written when the answer section was not walked completely by the parser (answersOff < 0)
   * or is empty. The text is ASCII and may hold `"` `\` `,` (the caller quotes it for CSV).
   * With `dv` (a DataView of dst) addresses are written 4 bytes at a time, which may store up
   * to 3 bytes past the returned end.
   */
  write(buf: Buffer, view: DnsView, dst: Buffer, o: number, dv: DataView | null = null): number {
    if (view.answersOff < 0 || view.ancount === 0) {
      this.plain = true;
      return o;
    }
    const msgEnd = view.msgStart + view.size;
    rr.reset(buf, view.msgStart, msgEnd);
    rr.pos = view.answersOff;
    const limit = o + this.maxBytes;
    const first = o;
    let plain = true;
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
      let end: number;
      // The common answers first: an address needs no cursor, no type lookup, no quoting.
      if (type === TYPE_A && rdlen === 4) {
        if (dv !== null) {
          dv.setUint16(o, A_PREFIX_WORD, true);
          end = writeIpv4TextWords(buf, rdStart, dv, o + 2);
        } else end = writeIpv4Text(buf, rdStart, dst, copy(dst, o, A_PREFIX));
      } else if (type === TYPE_AAAA && rdlen === 16)
        end = writeIpv6Text(buf, rdStart, dst, copy(dst, o, AAAA_PREFIX));
      else {
        plain = false;
        end = this.entry(buf, view.msgStart, type, rdStart, rdlen, dst, o, limit);
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
    this.plain = plain;
    return o;
  }

  /** "TYPE rdata" at dst[o..] for any RR but a well-formed A or AAAA; past `limit` when too long. */
  private entry(
    buf: Buffer,
    msgStart: number,
    type: number,
    rdStart: number,
    rdlen: number,
    dst: Buffer,
    o: number,
    limit: number,
  ): number {
    o = copy(dst, o, qtypeBytes(type));
    dst[o++] = SPACE;
    const mark = o;
    // Generic entries are sized before they are written (RDATA may be 64 KiB).
    const genericLen = GENERIC.length + 5 + 1 + 2 * rdlen;
    let end = writeRdata(type, buf, msgStart, rdStart, rdStart + rdlen, dst, o, limit);
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
    return end;
  }
}

/** The answers text as a string (tests, logs; allocates). */
export function answersText(buf: Buffer, view: DnsView, maxBytes = ANSWERS_TEXT_MAX_BYTES): string {
  const tmp = Buffer.alloc(maxBytes + ANSWERS_TEXT_SLACK);
  return tmp.toString('latin1', 0, new AnswersWriter(maxBytes).write(buf, view, tmp, 0));
}
