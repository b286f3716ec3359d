// Domain names (RFC 1035 §3.1, §4.1.4): decode a possibly compressed name into
// presentation format, or skip one without decoding.
//
// Presentation format matches miekg/dns (what the reference `dnstap` CLI prints), except
// that we lower-case A-Z and drop the trailing dot: the bytes . space ' @ ; ( ) " \ become
// "\" + the byte, bytes < 0x20 and > 0x7E become "\DDD" (three decimal digits), the root
// is ".". Label start offsets are recorded so suffix lookups can walk label boundaries even
// when a label contains an escaped dot.

import type { Cursor } from './cursor';
import type { DnsErrorCode } from './errors';
import type { DnsView } from './view';

/** RFC 1035 §3.1: a name is at most 255 octets in wire format, length bytes and root included. */
export const MAX_NAME_WIRE_OCTETS = 255;

/**
 * Upper bound on compression pointers followed while reading one name. Pointers must also
 * point strictly backwards, which alone rules out loops; the bound caps the work a hostile
 * chain of pointers can cause. 126 is the value miekg/dns uses: a 255-octet name has at
 * most 127 labels, so a legitimate chain (one pointer per label) never needs more.
 */
export const MAX_POINTER_JUMPS = 126;

/** The header is not a name: a pointer into it is out of range. */
const FIRST_NAME_OFFSET = 12;

// How each wire byte is written: 0 = as is, 1 = lower-cased, 2 = "\" + byte, 3 = "\DDD".
const COPY = 0;
const LOWER = 1;
const ESCAPE = 2;
const DECIMAL = 3;
/** Written as it is, like COPY, but a CSV field holding it needs quotes (`,`). */
const COPY_CSV_SPECIAL = 4;
const KIND = new Uint8Array(256);
for (let b = 0; b < 256; b++) {
  if (b < 0x20 || b > 0x7e) KIND[b] = DECIMAL;
  else if (b >= 0x41 && b <= 0x5a) KIND[b] = LOWER;
  else if ('. \'@;()"\\'.includes(String.fromCharCode(b))) KIND[b] = ESCAPE;
  else KIND[b] = COPY;
}
/** KIND for readName(), which also notes `,` (the question name goes to a CSV field). */
const READ_KIND = KIND.slice();
READ_KIND[0x2c] = COPY_CSV_SPECIAL;

const BACKSLASH = 0x5c;
const DOT = 0x2e;
const DIGIT0 = 0x30;

/**
 * Reads the name at cur.pos into out.name/nameLen/labelStarts/labelCount and leaves cur.pos
 * after the name as stored at that position (after the first pointer, if any).
 * Returns false after recording the error in `cur`; out.nameLen and out.labelCount are then
 * left unchanged (the caller reset them).
 */
export function readName(cur: Cursor, out: DnsView): boolean {
  const buf = cur.buf;
  const msgStart = cur.start;
  const end = cur.end;
  const dst = out.name;
  const starts = out.labelStarts;
  let pos = cur.pos;
  // Pointers must target bytes strictly before the run of labels being read, so the
  // targets strictly decrease: a self pointer, a forward pointer or a cycle cannot pass.
  let runStart = pos;
  let resume = -1;
  let jumps = 0;
  let wire = 1; // the terminating root byte
  let o = 0;
  let labels = 0;
  let csvPlain = true;
  for (;;) {
    if (pos >= end) return cur.fail('DNS_TRUNCATED', pos);
    const len = buf[pos];
    if (len === 0) {
      pos++;
      break;
    }
    const type = len & 0xc0;
    if (type === 0) {
      wire += len + 1;
      if (wire > MAX_NAME_WIRE_OCTETS) return cur.fail('DNS_NAME_TOO_LONG', pos);
      const labelEnd = pos + 1 + len;
      if (labelEnd > end) return cur.fail('DNS_TRUNCATED', pos);
      if (labels > 0) dst[o++] = DOT;
      starts[labels++] = o;
      for (let i = pos + 1; i < labelEnd; i++) {
        const b = buf[i];
        const kind = READ_KIND[b];
        if (kind === COPY) {
          dst[o++] = b;
        } else if (kind === LOWER) {
          dst[o++] = b | 0x20;
        } else if (kind === ESCAPE) {
          dst[o++] = BACKSLASH;
          dst[o++] = b;
          csvPlain = false;
        } else if (kind === DECIMAL) {
          dst[o++] = BACKSLASH;
          dst[o++] = DIGIT0 + ((b / 100) | 0);
          dst[o++] = DIGIT0 + (((b / 10) | 0) % 10);
          dst[o++] = DIGIT0 + (b % 10);
          csvPlain = false;
        } else {
          dst[o++] = b;
          csvPlain = false;
        }
      }
      pos = labelEnd;
    } else if (type === 0xc0) {
      if (end - pos < 2) return cur.fail('DNS_TRUNCATED', pos);
      const target = msgStart + (((len & 0x3f) << 8) | buf[pos + 1]);
      if (target >= runStart || target < msgStart + FIRST_NAME_OFFSET) {
        return cur.fail('DNS_BAD_POINTER', pos);
      }
      if (++jumps > MAX_POINTER_JUMPS) return cur.fail('DNS_POINTER_LOOP', pos);
      if (resume < 0) resume = pos + 2;
      pos = target;
      runStart = target;
    } else {
      return cur.fail('DNS_BAD_LABEL_TYPE', pos);
    }
  }
  if (labels === 0) dst[o++] = DOT;
  out.nameLen = o;
  out.nameCsvPlain = csvPlain;
  out.labelCount = labels;
  cur.pos = resume < 0 ? pos : resume;
  return true;
}

/**
 * Skips the name at cur.pos without decoding it (owner names of RRs we do not output).
 * Checks what can be checked without following pointers: bounds, label types, the length
 * of the uncompressed part, and that a pointer points backwards past the header.
 */
export function skipName(cur: Cursor): boolean {
  const buf = cur.buf;
  const end = cur.end;
  const nameStart = cur.pos;
  let pos = nameStart;
  let wire = 1;
  for (;;) {
    if (pos >= end) return cur.fail('DNS_TRUNCATED', pos);
    const len = buf[pos];
    if (len === 0) {
      cur.pos = pos + 1;
      return true;
    }
    const type = len & 0xc0;
    if (type === 0) {
      wire += len + 1;
      if (wire > MAX_NAME_WIRE_OCTETS) return cur.fail('DNS_NAME_TOO_LONG', pos);
      if (end - pos <= len) return cur.fail('DNS_TRUNCATED', pos);
      pos += len + 1;
    } else if (type === 0xc0) {
      if (end - pos < 2) return cur.fail('DNS_TRUNCATED', pos);
      const target = cur.start + (((len & 0x3f) << 8) | buf[pos + 1]);
      if (target >= nameStart || target < cur.start + FIRST_NAME_OFFSET) {
        return cur.fail('DNS_BAD_POINTER', pos);
      }
      cur.pos = pos + 2;
      return true;
    } else {
      return cur.fail('DNS_BAD_LABEL_TYPE', pos);
    }
  }
}

/** The presentation-format name as a string (tests, logs; allocates). */
export function nameToString(view: DnsView): string {
  return view.name.toString('latin1', 0, view.nameLen);
}

/**
 * Decodes the name at cur.pos into dst[o..] in the same presentation format as readName
 * (lower-cased, escaped, no trailing dot, the root is ".") and leaves cur.pos after it.
 * For names inside RDATA (answers.ts), where label offsets are not needed. The caller
 * guarantees MAX_NAME_TEXT_BYTES of room at dst[o..]. Returns the position after the text,
 * or -1 after recording the error in `cur`.
 */
export function writeNameText(cur: Cursor, dst: Buffer, o: number): number {
  const buf = cur.buf;
  const msgStart = cur.start;
  const end = cur.end;
  let pos = cur.pos;
  let runStart = pos;
  let resume = -1;
  let jumps = 0;
  let wire = 1;
  const first = o;
  for (;;) {
    if (pos >= end) return failed(cur, 'DNS_TRUNCATED', pos);
    const len = buf[pos];
    if (len === 0) {
      pos++;
      break;
    }
    const type = len & 0xc0;
    if (type === 0) {
      wire += len + 1;
      if (wire > MAX_NAME_WIRE_OCTETS) return failed(cur, 'DNS_NAME_TOO_LONG', pos);
      const labelEnd = pos + 1 + len;
      if (labelEnd > end) return failed(cur, 'DNS_TRUNCATED', pos);
      if (o > first) dst[o++] = DOT;
      for (let i = pos + 1; i < labelEnd; i++) {
        const b = buf[i];
        const kind = KIND[b];
        if (kind === COPY) dst[o++] = b;
        else if (kind === LOWER) dst[o++] = b | 0x20;
        else if (kind === ESCAPE) {
          dst[o++] = BACKSLASH;
          dst[o++] = b;
        } else {
          dst[o++] = BACKSLASH;
          dst[o++] = DIGIT0 + ((b / 100) | 0);
          dst[o++] = DIGIT0 + (((b / 10) | 0) % 10);
          dst[o++] = DIGIT0 + (b % 10);
        }
      }
      pos = labelEnd;
    } else if (type === 0xc0) {
      if (end - pos < 2) return failed(cur, 'DNS_TRUNCATED', pos);
      const target = msgStart + (((len & 0x3f) << 8) | buf[pos + 1]);
      if (target >= runStart || target < msgStart + FIRST_NAME_OFFSET)
        return failed(cur, 'DNS_BAD_POINTER', pos);
      if (++jumps > MAX_POINTER_JUMPS) return failed(cur, 'DNS_POINTER_LOOP', pos);
      if (resume < 0) resume = pos + 2;
      pos = target;
      runStart = target;
    } else {
      return failed(cur, 'DNS_BAD_LABEL_TYPE', pos);
    }
  }
  if (o === first) dst[o++] = DOT;
  cur.pos = resume < 0 ? pos : resume;
  return o;
}

/** Bound on the presentation text of one name: 250 label bytes as "\DDD" plus 3 dots (view.ts NAME_BUF_SIZE). */
export const MAX_NAME_TEXT_BYTES = 1024;

function failed(cur: Cursor, code: DnsErrorCode, at: number): -1 {
  cur.fail(code, at);
  return -1;
}
