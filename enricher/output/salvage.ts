// Finds the longest valid prefix of a partial chunk left by a crash: whole CSV rows only, and
// with gzip whole members only, with zstd whole frames only. Pure functions over bytes (no fs), so every torn-tail case can
// be tested at every byte position.
//
// A plain file is cut after the last CRLF that lies outside quotes (a quoted field may hold
// CRLF) and whose row has as many fields as the header. A gzip file is cut after the last
// member that inflates, passes its CRC-32/ISIZE check and ends on a row boundary; a zstd file
// after the last frame that is structurally whole (RFC 8878 block headers walked to the last
// block, checksum present), decompresses (content checksum verified) and ends on a row
// boundary. The writer only ever fsyncs whole blocks (= whole members or frames), so every row
// reported durable lies inside that prefix.
import * as zlib from 'node:zlib';
import { zstdAvailable, zstdDecompressSync, zstdUnavailableError } from './compression';
import { COMMA, CR, LF, QUOTE } from './csv';

/**
 * A crash can leave a zero-filled hole (whole pages) before data that did reach the disk
 * (XFS, ext4 delalloc). If the hole ended at a row start, the row after it would still have
 * the right field count, so a run of NULs this long ends the valid data. Real rows never hold
 * it: dnstap identity/version strings are short and DNS names are escaped.
 */
export const MAX_NUL_RUN = 64;

/** Incremental RFC 4180 row-boundary scanner over a byte stream (header row first). */
export class CsvRowScanner {
  /** Data rows completed so far (the header is not counted). */
  rows = 0;
  /** Stream offset just after the last valid row end (header included); 0 before the header. */
  validEnd = 0;
  /** Set at the first malformed row; input after it is ignored. */
  broken = false;
  private offset = 0;
  private inQuotes = false;
  private prevCR = false;
  private fields = 1;
  private columns = 0;
  private nulRun = 0;

  /** True when the input seen so far ends exactly on a row boundary. */
  get atRowEnd(): boolean {
    return !this.broken && this.offset === this.validEnd;
  }

  feed(buf: Uint8Array, start = 0, end = buf.length): void {
    if (this.broken) return;
    for (let i = start; i < end; i++) {
      const b = buf[i]!;
      if (b === 0) {
        if (++this.nulRun >= MAX_NUL_RUN) {
          this.broken = true;
          return;
        }
      } else this.nulRun = 0;
      if (b === QUOTE) this.inQuotes = !this.inQuotes;
      else if (!this.inQuotes) {
        if (b === COMMA) this.fields++;
        else if (b === LF) {
          if (!this.prevCR || !this.rowEnded(i - start)) {
            this.broken = true;
            return;
          }
        } else if (this.prevCR) {
          this.broken = true; // a CR outside quotes must end the row
          return;
        }
      }
      this.prevCR = b === CR && !this.inQuotes;
    }
    this.offset += end - start;
  }

  private rowEnded(index: number): boolean {
    // The header fixes the field count, so a newer schema is recovered as well as this one.
    if (this.columns === 0) this.columns = this.fields;
    else if (this.fields !== this.columns) return false;
    else this.rows++;
    this.fields = 1;
    this.validEnd = this.offset + index + 1;
    return true;
  }
}

export interface Salvage {
  /** Bytes of the file to keep (0: nothing worth publishing). */
  keepBytes: number;
  /** Complete data rows in the kept prefix. */
  rows: number;
}

export function salvagePlain(data: Uint8Array): Salvage {
  const scanner = new CsvRowScanner();
  scanner.feed(data);
  return scanner.rows === 0 ? { keepBytes: 0, rows: 0 } : { keepBytes: scanner.validEnd, rows: scanner.rows };
}

const GZIP_ID1 = 0x1f;
const GZIP_ID2 = 0x8b;
const GZIP_DEFLATE = 8;
const GZIP_FIXED_HEADER = 10;
const GZIP_TRAILER = 8;
const FHCRC = 2;
const FEXTRA = 4;
const FNAME = 8;
const FCOMMENT = 16;

/** Offset of the deflate data of the member at `at`, or -1 when the header is torn or invalid. */
function memberDataStart(data: Uint8Array, at: number): number {
  if (at + GZIP_FIXED_HEADER > data.length) return -1;
  if (data[at] !== GZIP_ID1 || data[at + 1] !== GZIP_ID2 || data[at + 2] !== GZIP_DEFLATE) return -1;
  const flags = data[at + 3]!;
  let p = at + GZIP_FIXED_HEADER;
  if (flags & FEXTRA) {
    if (p + 2 > data.length) return -1;
    p += 2 + (data[p]! | (data[p + 1]! << 8));
  }
  for (const flag of [FNAME, FCOMMENT]) {
    if (!(flags & flag)) continue;
    while (p < data.length && data[p] !== 0) p++;
    p++;
  }
  if (flags & FHCRC) p += 2;
  return p <= data.length ? p : -1;
}

function readUInt32LE(data: Uint8Array, p: number): number {
  return (data[p]! | (data[p + 1]! << 8) | (data[p + 2]! << 16) | (data[p + 3]! << 24)) >>> 0;
}

export function salvageGzip(data: Uint8Array): Salvage {
  const scanner = new CsvRowScanner();
  let keep: Salvage = { keepBytes: 0, rows: 0 };
  let at = 0;
  while (at < data.length) {
    const start = memberDataStart(data, at);
    if (start < 0) break;
    let inflated: { buffer: Buffer; engine: zlib.InflateRaw };
    try {
      // `info` exposes how much input the deflate stream consumed: that is where the trailer is.
      const res = zlib.inflateRawSync(data.subarray(start), { info: true });
      inflated = res as unknown as { buffer: Buffer; engine: zlib.InflateRaw };
    } catch {
      break; // torn or corrupt member
    }
    const trailer = start + inflated.engine.bytesWritten;
    if (trailer + GZIP_TRAILER > data.length) break;
    const out = inflated.buffer;
    if (
      readUInt32LE(data, trailer) !== zlib.crc32(out) ||
      readUInt32LE(data, trailer + 4) !== out.length >>> 0
    )
      break;
    scanner.feed(out);
    if (scanner.broken) break;
    at = trailer + GZIP_TRAILER;
    if (scanner.atRowEnd && scanner.rows > 0) keep = { keepBytes: at, rows: scanner.rows };
  }
  return keep;
}

const ZSTD_MAGIC = 0xfd2fb528;
const ZSTD_BLOCK_HEADER = 3;
const ZSTD_BLOCK_RLE = 1;
const ZSTD_BLOCK_RESERVED = 3;
const ZSTD_CHECKSUM_BYTES = 4;
const ZSTD_DICT_ID_BYTES = [0, 1, 2, 4];
const ZSTD_FCS_BYTES = [0, 2, 4, 8];

/**
 * End offset of the zstd frame at `at` (RFC 8878 §3.1.1), found by walking its block headers
 * without decoding; -1 when the frame is torn or not a zstd frame.
 */
export function zstdFrameEnd(data: Uint8Array, at: number): number {
  if (at + 5 > data.length || readUInt32LE(data, at) !== ZSTD_MAGIC) return -1;
  const fhd = data[at + 4]!;
  if (fhd & 0x08) return -1; // reserved bit
  const fcsFlag = fhd >> 6;
  const singleSegment = (fhd >> 5) & 1;
  const checksum = (fhd >> 2) & 1;
  let p = at + 5 + (singleSegment ? 0 : 1) + ZSTD_DICT_ID_BYTES[fhd & 3]!;
  p += fcsFlag === 0 ? singleSegment : ZSTD_FCS_BYTES[fcsFlag]!;
  for (;;) {
    if (p + ZSTD_BLOCK_HEADER > data.length) return -1;
    const h = data[p]! | (data[p + 1]! << 8) | (data[p + 2]! << 16);
    const type = (h >> 1) & 3;
    if (type === ZSTD_BLOCK_RESERVED) return -1;
    p += ZSTD_BLOCK_HEADER + (type === ZSTD_BLOCK_RLE ? 1 : h >>> 3);
    if (p > data.length) return -1;
    if (h & 1) break; // Last_Block
  }
  if (checksum) p += ZSTD_CHECKSUM_BYTES;
  return p <= data.length ? p : -1;
}

/** Throws OUTPUT_UNSUPPORTED on a runtime without zstd: no decoder means no verdict. */
export function salvageZstd(data: Uint8Array): Salvage {
  if (!zstdAvailable()) throw zstdUnavailableError();
  const scanner = new CsvRowScanner();
  let keep: Salvage = { keepBytes: 0, rows: 0 };
  let at = 0;
  while (at < data.length) {
    const end = zstdFrameEnd(data, at);
    if (end < 0) break;
    let out: Buffer;
    try {
      out = zstdDecompressSync(data.subarray(at, end));
    } catch {
      break; // corrupt frame (bad checksum, zero-filled hole)
    }
    scanner.feed(out);
    if (scanner.broken) break;
    at = end;
    if (scanner.atRowEnd && scanner.rows > 0) keep = { keepBytes: at, rows: scanner.rows };
  }
  return keep;
}
