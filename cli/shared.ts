// Option-to-config mapping shared by the subcommands that write chunks.
// compression.ts directly, not the output index: the agent imports this file and must not
// load the chunk writer.
import { type Compression, ZSTD_MIN_NODE, zstdAvailable } from '../enricher/output/compression';
import type { ChunkWriterOptions } from '../enricher/output/index';
import { MAX_AUTH_TOKEN_LENGTH } from '../proto/link/constants';
import { type OptionValues, UsageError } from './options';

export function outputOptions(o: OptionValues): Omit<ChunkWriterOptions, 'onCommit'> {
  return {
    outputDir: String(o['output-dir']),
    enricherId: String(o.id),
    maxRows: Number(o['rotate-max-rows']),
    maxBytes: Number(o['rotate-max-bytes']),
    maxAgeMs: Number(o['rotate-max-age']) * 1000,
    compression: compressionOption(o),
  };
}

/** --compression, or its alias --gzip; zstd only on a runtime that has it (checked at start). */
export function compressionOption(o: OptionValues): Compression {
  const c = o.compression as Compression | undefined;
  const alias: Compression | undefined = o.gzip === undefined ? undefined : o.gzip ? 'gzip' : 'none';
  if (c !== undefined && alias !== undefined && c !== alias) {
    throw new UsageError(`--gzip (${o.gzip}) contradicts --compression ${c}: give one of them`);
  }
  const resolved = c ?? alias ?? 'none';
  if (resolved === 'zstd' && !zstdAvailable()) {
    throw new UsageError(
      `--compression zstd needs Node.js ${ZSTD_MIN_NODE} (built-in zstd); ` +
        `this is Node.js ${process.versions.node}: use --compression gzip or none, or a newer Node.js`,
    );
  }
  return resolved;
}

/**
 * The shared link token from --auth-token-file contents. Secrets written with `echo` or
 * kubectl end with a newline: the token is what precedes it (agent and enricher agree).
 */
export function tokenFromFile(bytes: Buffer, path: string): Buffer {
  let end = bytes.length;
  if (end > 0 && bytes[end - 1] === 0x0a) end--;
  if (end > 0 && bytes[end - 1] === 0x0d) end--;
  const token = bytes.subarray(0, end);
  if (token.length === 0) throw new UsageError(`--auth-token-file ${path}: the file is empty`);
  if (token.length > MAX_AUTH_TOKEN_LENGTH) {
    throw new UsageError(
      `--auth-token-file ${path}: the token is longer than ${MAX_AUTH_TOKEN_LENGTH} bytes`,
    );
  }
  return token;
}
