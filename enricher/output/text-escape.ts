// The escaping of free-text columns whose content comes from outside: dnstap identity (raw
// bytes from the DNS server), policy category/action/tenant (a user's JSON) and row source
// names. Snowflake rejects a row with invalid UTF-8 (and the pipe's ON_ERROR then decides the
// whole chunk's fate), and its default CSV format gives `\` and `\N` meanings of their own,
// so these columns are written as "Snowtap text": printable UTF-8 with C-style escapes.
//
//   \          -> \\
//   a byte 0x00-0x1F or 0x7F (NUL, TAB, CR, LF, ...)           -> \xHH (two lower-case hex digits)
//   a byte that is not part of a well-formed UTF-8 sequence    -> \xHH   (bytes input)
//   a lone UTF-16 surrogate (JSON "\ud800" parses to one)      -> \uHHHH (string input)
//   anything else (ASCII, valid UTF-8 incl. BOM, quotes, commas) as it is
//
// The escaping is lossless: unescapeText() gives back the exact input bytes (or string). A
// field in this form never contains CR, LF or NUL, and never equals `\N` (every backslash is
// followed by `\`, `x` or `u`), so no NULL_IF default can claim it. The CSV layer then quotes
// it when it holds `,` `"` or `\` (csv.ts). Off the hot path: identities are cached per
// stream, policy values are escaped once at load time.

const BACKSLASH = 0x5c;
const HEX = '0123456789abcdef';

function isControl(c: number): boolean {
  return c < 0x20 || c === 0x7f;
}

function hexByte(b: number): string {
  return '\\x' + HEX[b >> 4] + HEX[b & 15];
}

/**
 * Length of the well-formed UTF-8 sequence at src[i] (RFC 3629 §4 table: no overlong forms,
 * no surrogates, nothing above U+10FFFF), or 0 when the byte there does not start one.
 */
function utf8SequenceLength(src: Uint8Array, i: number, end: number): number {
  const b = src[i]!;
  let n: number;
  let lo = 0x80;
  let hi = 0xbf;
  if (b >= 0xc2 && b <= 0xdf) n = 2;
  else if (b >= 0xe0 && b <= 0xef) {
    n = 3;
    if (b === 0xe0) lo = 0xa0;
    else if (b === 0xed) hi = 0x9f;
  } else if (b >= 0xf0 && b <= 0xf4) {
    n = 4;
    if (b === 0xf0) lo = 0x90;
    else if (b === 0xf4) hi = 0x8f;
  } else return 0;
  if (i + n > end) return 0;
  const b1 = src[i + 1]!;
  if (b1 < lo || b1 > hi) return 0;
  for (let k = 2; k < n; k++) {
    const c = src[i + k]!;
    if (c < 0x80 || c > 0xbf) return 0;
  }
  return n;
}

/** src[start, end) as Snowtap text (see the file header). */
export function escapeTextBytes(src: Uint8Array, start = 0, end = src.length): string {
  let out = '';
  let runStart = start; // bytes [runStart, i) are copied as they are
  const flush = (i: number) => {
    if (i > runStart)
      out += Buffer.from(src.buffer, src.byteOffset + runStart, i - runStart).toString('utf8');
  };
  for (let i = start; i < end; ) {
    const b = src[i]!;
    if (b < 0x80) {
      if (b === BACKSLASH || isControl(b)) {
        flush(i);
        out += b === BACKSLASH ? '\\\\' : hexByte(b);
        runStart = i + 1;
      }
      i++;
      continue;
    }
    const n = utf8SequenceLength(src, i, end);
    if (n === 0) {
      flush(i);
      out += hexByte(b);
      runStart = i + 1;
      i++;
    } else i += n;
  }
  flush(end);
  return out;
}

/** A JavaScript string (valid or not as UTF-16) as Snowtap text. */
export function escapeTextString(s: string): string {
  let out = '';
  let runStart = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    let rep: string | null = null;
    if (c === BACKSLASH) rep = '\\\\';
    else if (isControl(c)) rep = hexByte(c);
    else if (c >= 0xd800 && c <= 0xdfff) {
      const next = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
      if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        i++; // a well-formed pair: copied as it is
        continue;
      }
      rep = '\\u' + c.toString(16).padStart(4, '0');
    }
    if (rep !== null) {
      out += s.slice(runStart, i) + rep;
      runStart = i + 1;
    }
  }
  return runStart === 0 ? s : out + s.slice(runStart);
}

/** True when `s` can be read back by unescapeText (a value the writer could have produced). */
const ESCAPE_SEQUENCE = /\\(?:\\|x[0-9a-f]{2}|u[0-9a-f]{4})/g;

/**
 * The inverse of escapeTextBytes/escapeTextString for consumers (and the tests): the original
 * bytes. `\uHHHH` (a lone surrogate) has no UTF-8 form and comes back as its WTF-8 bytes.
 */
export function unescapeText(s: string): Buffer {
  const parts: Buffer[] = [];
  let last = 0;
  for (const m of s.matchAll(ESCAPE_SEQUENCE)) {
    const at = m.index;
    parts.push(Buffer.from(s.slice(last, at), 'utf8'));
    const e = m[0];
    if (e === '\\\\') parts.push(Buffer.from([BACKSLASH]));
    else if (e[1] === 'x') parts.push(Buffer.from([Number.parseInt(e.slice(2), 16)]));
    else {
      const u = Number.parseInt(e.slice(2), 16);
      parts.push(Buffer.from([0xe0 | (u >> 12), 0x80 | ((u >> 6) & 0x3f), 0x80 | (u & 0x3f)]));
    }
    last = at + e.length;
  }
  parts.push(Buffer.from(s.slice(last), 'utf8'));
  return Buffer.concat(parts);
}
