// Domain suffixes as written in policy documents. They are compared byte for byte with
// qnames in the presentation format our DNS parser produces (lower-cased, RFC 1035
// escapes `\.` and `\DDD` inside labels, no trailing dot), so normalisation here is
// deliberately small: lower-case ASCII letters, strip one unescaped trailing dot, and
// reject what can never match (empty labels, whitespace, raw non-ASCII, bad escapes,
// labels or names longer than DNS allows). Escapes are kept as written: the document must
// spell them the way the parser does.

import { FieldError, PolicyErrorCode } from './errors';

/** RFC 1035 §2.3.4, counted in wire bytes (an escape is one byte). */
export const MAX_LABEL_WIRE_BYTES = 63;
export const MAX_NAME_WIRE_BYTES = 255;

/** The root suffix: matches every name (a default rule). */
export const ROOT_SUFFIX = '';

function invalid(raw: string, problem: string): FieldError {
  const shown = raw.length > 80 ? JSON.stringify(raw.slice(0, 80)) + '...' : JSON.stringify(raw);
  return new FieldError(PolicyErrorCode.INVALID, `${shown} ${problem}`);
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
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
  let upper = false;
  let labelBytes = 0;
  let nameBytes = 1; // the root label's length byte
  for (let i = 0; i < end; i++) {
    const c = raw.charCodeAt(i);
    if (c === 0x2e) {
      if (labelBytes === 0) throw invalid(raw, 'has an empty label');
      nameBytes += labelBytes + 1;
      labelBytes = 0;
      continue;
    }
    if (c === 0x5c) {
      const d = i + 1 < end ? raw.charCodeAt(i + 1) : -1;
      if (isDigit(d)) {
        if (i + 3 >= end || !isDigit(raw.charCodeAt(i + 2)) || !isDigit(raw.charCodeAt(i + 3))) {
          throw invalid(raw, 'has a \\DDD escape without three decimal digits');
        }
        if (Number(raw.slice(i + 1, i + 4)) > 255) throw invalid(raw, 'has a \\DDD escape above 255');
        i += 3;
      } else if (d >= 0x21 && d <= 0x7e) {
        if (d >= 0x41 && d <= 0x5a) upper = true;
        i += 1;
      } else {
        throw invalid(raw, 'has a backslash that does not start an escape');
      }
    } else if (c >= 0x41 && c <= 0x5a) {
      upper = true;
    } else if (c < 0x21 || c > 0x7e) {
      throw invalid(
        raw,
        'contains a character that is not printable ASCII (write IDNs as xn-- labels, other bytes as \\DDD)',
      );
    }
    labelBytes++;
    if (labelBytes > MAX_LABEL_WIRE_BYTES)
      throw invalid(raw, `has a label longer than ${MAX_LABEL_WIRE_BYTES} bytes`);
  }
  if (labelBytes === 0) throw invalid(raw, 'has an empty label');
  nameBytes += labelBytes + 1;
  if (nameBytes > MAX_NAME_WIRE_BYTES)
    throw invalid(raw, `is longer than ${MAX_NAME_WIRE_BYTES} bytes on the wire`);
  const trimmed = end === raw.length ? raw : raw.slice(0, end);
  // The string is printable ASCII by now, so toLowerCase() only touches A-Z.
  return upper ? trimmed.toLowerCase() : trimmed;
}

/**
 * Label start offsets of a canonical suffix (escape-aware: `\.` is not a boundary).
 * Writes into `out` and returns the label count. Load-time only.
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
