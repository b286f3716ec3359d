// IP addresses as text, written straight into an output buffer: IPv4 dotted decimal, IPv6
// in the RFC 5952 canonical form (lower-case hex, no leading zeros, the longest run of two or
// more zero groups - the first on a tie - as "::", IPv4-mapped addresses as ::ffff:a.b.c.d).

/** "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff". */
export const IP_TEXT_MAX_LENGTH = 39;

const COLON = 0x3a;
const DOT = 0x2e;
const HEX = Buffer.from('0123456789abcdef', 'latin1');
const groups = new Uint16Array(8); // scratch: synchronous use only

/** n in 0..999. */
export function writeSmallDecimal(n: number, dst: Buffer, pos: number): number {
  if (n >= 100) dst[pos++] = 0x30 + ((n / 100) | 0);
  if (n >= 10) dst[pos++] = 0x30 + (((n / 10) | 0) % 10);
  dst[pos++] = 0x30 + (n % 10);
  return pos;
}

// Decimal text of every byte value: DEC[4b] = its length, DEC[4b+1..] its digits.
const DEC = new Uint8Array(1024);
for (let v = 0; v < 256; v++) {
  const t = String(v);
  DEC[4 * v] = t.length;
  for (let i = 0; i < t.length; i++) DEC[4 * v + 1 + i] = t.charCodeAt(i);
}

/** One byte value as decimal (table-driven: no divisions on the per-address path). */
function writeByteDecimal(v: number, dst: Buffer, pos: number): number {
  const k = v << 2;
  const n = DEC[k]!;
  dst[pos] = DEC[k + 1]!;
  if (n > 1) {
    dst[pos + 1] = DEC[k + 2]!;
    if (n > 2) dst[pos + 2] = DEC[k + 3]!;
  }
  return pos + n;
}

// "0." .. "255.": an octet and its dot as one little-endian word (writeIpv4TextWords).
const OCTET_WORDS = new Uint32Array(256);
const OCTET_LENS = new Uint8Array(256);
for (let v = 0; v < 256; v++) {
  const t = `${v}.`;
  for (let i = 0; i < t.length; i++) OCTET_WORDS[v]! |= t.charCodeAt(i) << (8 * i);
  OCTET_LENS[v] = t.length;
}

/**
 * writeIpv4Text() through a DataView of dst, one 4-byte store per octet: stores up to 3
 * bytes past the returned end (the caller overwrites them or leaves them past its data).
 */
export function writeIpv4TextWords(a: Uint8Array, off: number, dv: DataView, pos: number): number {
  let k = a[off]!;
  dv.setUint32(pos, OCTET_WORDS[k]!, true);
  pos += OCTET_LENS[k]!;
  k = a[off + 1]!;
  dv.setUint32(pos, OCTET_WORDS[k]!, true);
  pos += OCTET_LENS[k]!;
  k = a[off + 2]!;
  dv.setUint32(pos, OCTET_WORDS[k]!, true);
  pos += OCTET_LENS[k]!;
  k = a[off + 3]!;
  dv.setUint32(pos, OCTET_WORDS[k]!, true);
  return pos + OCTET_LENS[k]! - 1;
}

/** The 4 bytes at a[off..] as dotted decimal. */
export function writeIpv4Text(a: Uint8Array, off: number, dst: Buffer, pos: number): number {
  pos = writeByteDecimal(a[off]!, dst, pos);
  dst[pos++] = DOT;
  pos = writeByteDecimal(a[off + 1]!, dst, pos);
  dst[pos++] = DOT;
  pos = writeByteDecimal(a[off + 2]!, dst, pos);
  dst[pos++] = DOT;
  return writeByteDecimal(a[off + 3]!, dst, pos);
}

function writeHex(g: number, dst: Buffer, pos: number): number {
  if (g >= 0x1000) dst[pos++] = HEX[g >> 12]!;
  if (g >= 0x100) dst[pos++] = HEX[(g >> 8) & 0xf]!;
  if (g >= 0x10) dst[pos++] = HEX[(g >> 4) & 0xf]!;
  dst[pos++] = HEX[g & 0xf]!;
  return pos;
}

/** The 16 bytes at a[off..] in RFC 5952 form. */
export function writeIpv6Text(a: Uint8Array, off: number, dst: Buffer, pos: number): number {
  let bestStart = -1;
  let bestLen = 1; // a single zero group is never compressed (RFC 5952 §4.2.2)
  let runStart = -1;
  for (let i = 0; i < 8; i++) {
    const g = (groups[i] = (a[off + 2 * i]! << 8) | a[off + 2 * i + 1]!);
    if (g === 0) {
      if (runStart < 0) runStart = i;
      if (i - runStart + 1 > bestLen) {
        bestStart = runStart;
        bestLen = i - runStart + 1;
      }
    } else {
      runStart = -1;
    }
  }
  if (bestStart === 0 && bestLen === 5 && groups[5] === 0xffff) {
    // IPv4-mapped (::ffff:0:0/96, RFC 4291 §2.5.5.2): RFC 5952 §5 recommends mixed notation.
    dst[pos++] = COLON;
    dst[pos++] = COLON;
    for (let i = 0; i < 4; i++) dst[pos++] = 0x66; // "ffff"
    dst[pos++] = COLON;
    return writeIpv4Text(a, off + 12, dst, pos);
  }
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      dst[pos++] = COLON;
      dst[pos++] = COLON;
      i += bestLen - 1;
      continue;
    }
    if (i > 0 && i !== bestStart + bestLen) dst[pos++] = COLON;
    pos = writeHex(groups[i]!, dst, pos);
  }
  return pos;
}

/** An address of 4 or 16 bytes; any other length writes nothing (an empty CSV field). */
export function writeIpText(a: Uint8Array, off: number, len: number, dst: Buffer, pos: number): number {
  if (len === 4) return writeIpv4Text(a, off, dst, pos);
  if (len === 16) return writeIpv6Text(a, off, dst, pos);
  return pos;
}
