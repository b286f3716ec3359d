// Domain suffixes as written in policy documents. Lookups compare bytes with qnames in the
// presentation format of our DNS parser (proto/dns/name.ts, miekg/dns style): A-Z
// lower-cased; the bytes . space ' @ ; ( ) " \ written as "\" + the byte; bytes below 0x20
// or above 0x7E as "\DDD"; no trailing dot. A suffix is therefore rewritten into exactly
// that form: every escape is decoded to its wire byte and re-encoded the parser's way, so
// `\065`, `A` and `a` are the same label, as are `\046` and `\.`, or `\034`, `\"` and a
// bare `"`. One unescaped trailing dot is dropped. What can never match is rejected:
// empty labels, raw whitespace or non-ASCII (IDNs must be written as xn-- labels), bad
// escapes, labels or names longer than DNS allows.

import { FieldError, PolicyErrorCode } from './errors';

/** RFC 1035 §2.3.4, counted in wire bytes (an escape is one byte). */
export const MAX_LABEL_WIRE_BYTES = 63;
export const MAX_NAME_WIRE_BYTES = 255;

/** The root suffix: matches every name (a default rule). */
export const ROOT_SUFFIX = '';

// How the parser presents each byte (proto/dns/name.ts): as is, lower-cased, "\" + byte, "\DDD".
const AS_IS = 0;
const LOWER = 1;
const ESCAPE = 2;
const DECIMAL = 3;
const KIND = new Uint8Array(256).map((_, b) =>
  b < 0x20 || b > 0x7e
    ? DECIMAL
    : b >= 0x41 && b <= 0x5a
      ? LOWER
      : '. \'@;()"\\'.includes(String.fromCharCode(b))
        ? ESCAPE
        : AS_IS,
);
/** Characters a byte of each kind takes when written canonically. */
const WRITTEN = [1, 1, 2, 4];

function invalid(raw: string, problem: string): FieldError {
  const shown = raw.length > 80 ? JSON.stringify(raw.slice(0, 80)) + '...' : JSON.stringify(raw);
  return new FieldError(PolicyErrorCode.INVALID, `${shown} ${problem}`);
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/** A wire byte in the parser's presentation form. */
function present(b: number): string {
  const kind = KIND[b];
  if (kind === DECIMAL) return '\\' + String(b).padStart(3, '0');
  if (kind === LOWER) return String.fromCharCode(b | 0x20);
  return kind === ESCAPE ? '\\' + String.fromCharCode(b) : String.fromCharCode(b);
}

/** Length of `name` without one unescaped trailing dot. */
export function withoutTrailingDot(name: string): number {
  const end = name.length;
  if (end === 0 || name.charCodeAt(end - 1) !== 0x2e) return end;
  // The dot is escaped iff an odd number of backslashes precede it (`\\.` is a
  // backslash label byte followed by a separator).
  let slashes = 0;
  while (end - 2 - slashes >= 0 && name.charCodeAt(end - 2 - slashes) === 0x5c) slashes++;
  return slashes % 2 === 0 ? end - 1 : end;
}

/**
 * Returns the canonical suffix ('' for the root) or throws FieldError. Returns `raw`
 * itself when it is already canonical, so the common case allocates nothing.
 */
export function normalizeSuffix(raw: string): string {
  if (raw.length === 0 || raw === '.') return ROOT_SUFFIX;
  const end = withoutTrailingDot(raw);
  let out = '';
  let rewrite = false; // set once a character differs from its canonical form
  let labelBytes = 0;
  let nameBytes = 1; // the root label's length byte
  for (let i = 0; i < end; i++) {
    const c = raw.charCodeAt(i);
    let b: number;
    const from = i;
    if (c === 0x2e) {
      if (labelBytes === 0) throw invalid(raw, 'has an empty label');
      nameBytes += labelBytes + 1;
      labelBytes = 0;
      if (rewrite) out += '.';
      continue;
    }
    if (c === 0x5c) {
      const d = i + 1 < end ? raw.charCodeAt(i + 1) : -1;
      if (isDigit(d)) {
        if (i + 3 >= end || !isDigit(raw.charCodeAt(i + 2)) || !isDigit(raw.charCodeAt(i + 3))) {
          throw invalid(raw, 'has a \\DDD escape without three decimal digits');
        }
        b = Number(raw.slice(i + 1, i + 4));
        if (b > 255) throw invalid(raw, 'has a \\DDD escape above 255');
        i += 3;
      } else if (d >= 0x20 && d <= 0x7e) {
        b = d;
        i += 1;
      } else {
        throw invalid(raw, 'has a backslash that does not start an escape');
      }
    } else if (c < 0x21 || c > 0x7e) {
      throw invalid(
        raw,
        'contains a character that is not printable ASCII (write IDNs as xn-- labels, other bytes as \\DDD)',
      );
    } else {
      b = c;
    }
    // Canonical as written iff it took as many characters as the canonical form and is not
    // an upper-case letter (checked without building strings).
    const kind = KIND[b]!;
    if ((kind === LOWER || i - from + 1 !== WRITTEN[kind]) && !rewrite) {
      rewrite = true;
      out = raw.slice(0, from);
    }
    if (rewrite) out += present(b);
    labelBytes++;
    if (labelBytes > MAX_LABEL_WIRE_BYTES)
      throw invalid(raw, `has a label longer than ${MAX_LABEL_WIRE_BYTES} bytes`);
  }
  if (labelBytes === 0) throw invalid(raw, 'has an empty label');
  nameBytes += labelBytes + 1;
  if (nameBytes > MAX_NAME_WIRE_BYTES)
    throw invalid(raw, `is longer than ${MAX_NAME_WIRE_BYTES} bytes on the wire`);
  if (rewrite) return out;
  return end === raw.length ? raw : raw.slice(0, end);
}

/**
 * Label start offsets of a canonical suffix or presentation name (escape-aware: `\.` is
 * not a boundary). Writes into `out` and returns the label count. Not for the hot path.
 */
export function splitLabels(suffix: string, out: Int32Array): number {
  if (suffix.length === 0) return 0;
  let count = 0;
  out[count++] = 0;
  for (let i = 0; i < suffix.length; i++) {
    const c = suffix.charCodeAt(i);
    if (c === 0x5c) i += isDigit(suffix.charCodeAt(i + 1)) ? 3 : 1;
    else if (c === 0x2e) out[count++] = i + 1;
  }
  return count;
}
