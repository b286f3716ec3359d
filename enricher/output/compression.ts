// Chunk compression: none, gzip or zstd, always one independent unit per written block (a gzip
// member, a zstd frame), compressed asynchronously on the libuv threadpool. Concatenated gzip
// members are one valid gzip file (RFC 1952 §2.2) and concatenated zstd frames one valid zstd
// file (RFC 8878 §3.1), so every block boundary is a point where a torn file can be cut
// exactly (salvage.ts) and every fsync covers whole units.
//
// zstd is Node's built-in binding (zlib.zstdCompress, added in Node 23.8.0 and 22.15.0). Its
// stability level in Node 24's documentation is "1 - Experimental" (doc/api/zlib.md marks every
// zstd function, option and constant so; the module itself is Stable), though it emits no
// runtime warning. We use only its one-shot buffer API with two documented parameters (level
// and content checksum), which is the smallest surface to keep working if it changes; the
// output is standard zstd that any decoder reads. It is opt-in: the default stays `none`, which
// works on every supported runtime, and on a Node without zstd the option fails at start-up.
import * as zlib from 'node:zlib';
import { OutputError } from './errors';

export const COMPRESSIONS = ['none', 'gzip', 'zstd'] as const;
export type Compression = (typeof COMPRESSIONS)[number];

/** What follows `.csv` in chunk file names. */
export const COMPRESSION_SUFFIX: Readonly<Record<Compression, string>> = {
  none: '',
  gzip: '.gz',
  zstd: '.zst',
};

/** The first Node releases that have zlib.zstdCompress (two release lines got it). */
export const ZSTD_MIN_NODE = '>= 22.15 (23.x: >= 23.8)';

// zstd's frame checksum (XXH64 of the content, low 4 bytes) makes a torn or zero-filled frame
// fail to decompress, as gzip's CRC-32 does; it costs ~1 % of compression time.
const ZSTD_CHECKSUM = 1;

type Done = (err: Error | null, out: Buffer) => void;
export type BlockCompressor = (data: Buffer, done: Done) => void;

/** The zstd part of node:zlib (absent on Node 20; @types/node 20 does not declare it). */
interface ZstdApi {
  zstdCompress?: (data: Buffer, options: { params: Record<number, number> }, done: Done) => void;
  zstdDecompressSync?: (data: Uint8Array) => Buffer;
  constants: Record<string, number>;
}
const zstd = zlib as unknown as ZstdApi;

export function zstdAvailable(): boolean {
  return typeof zstd.zstdCompress === 'function' && typeof zstd.zstdDecompressSync === 'function';
}

/** OUTPUT_UNSUPPORTED naming the option value and this runtime. */
export function zstdUnavailableError(): OutputError {
  return new OutputError(
    'OUTPUT_UNSUPPORTED',
    `compression zstd needs Node.js ${ZSTD_MIN_NODE} (built-in zlib zstd); this is Node.js ${process.versions.node}: use gzip or none, or a newer Node.js`,
  );
}

/** Inflates one or more whole zstd frames; throws on torn or corrupt data (checksum included). */
export function zstdDecompressSync(data: Uint8Array): Buffer {
  if (!zstdAvailable()) throw zstdUnavailableError();
  return zstd.zstdDecompressSync!(data);
}

/** The block compressor for `c` at `level` (zlib 1-9 for gzip, 1-19 for zstd); null for none. */
export function blockCompressor(c: Compression, level: number): BlockCompressor | null {
  switch (c) {
    case 'none':
      return null;
    case 'gzip':
      return (data, done) => zlib.gzip(data, { level }, done);
    case 'zstd': {
      if (!zstdAvailable()) throw zstdUnavailableError();
      const k = zstd.constants;
      const params = { [k.ZSTD_c_compressionLevel!]: level, [k.ZSTD_c_checksumFlag!]: ZSTD_CHECKSUM };
      return (data, done) => zstd.zstdCompress!(data, { params }, done);
    }
  }
}
