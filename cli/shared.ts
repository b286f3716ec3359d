// Option-to-config mapping shared by the subcommands that write chunks.
import { headerBytesFor, parseColumnList } from '../enricher/output/csv';
import type { ChunkWriterOptions } from '../enricher/output/index';
import type { RowOptions } from '../enricher/pipeline/pipeline';
import { Pseudonymizer } from '../enricher/pipeline/pseudonym';
import { MAX_AUTH_TOKEN_LENGTH } from '../proto/link/constants';
import { type OptionValues, UsageError } from './options';

export function outputOptions(o: OptionValues): Omit<ChunkWriterOptions, 'onCommit'> {
  return {
    outputDir: String(o['output-dir']),
    enricherId: String(o.id),
    maxRows: Number(o['rotate-max-rows']),
    maxBytes: Number(o['rotate-max-bytes']),
    maxAgeMs: Number(o['rotate-max-age']) * 1000,
    gzip: Boolean(o.gzip),
    ...(o.columns === undefined ? {} : { header: headerBytesFor(columnsOption(o)) }),
  };
}

function columnsOption(o: OptionValues) {
  try {
    return parseColumnList(o.columns as string[]);
  } catch (err) {
    throw new UsageError(`--${(err as Error).message}`);
  }
}

function pseudonymizerFrom(path: string): Pseudonymizer {
  try {
    return Pseudonymizer.fromFile(path);
  } catch (err) {
    throw new UsageError(`--${(err as Error).message}`);
  }
}

/** --mask-client-ipv4/-ipv6, --drop-ecs, --pseudonymize-clients, --columns as the pipeline's row options. */
export function rowOptions(o: OptionValues): RowOptions {
  return {
    maskClientIpv4: Number(o['mask-client-ipv4']),
    maskClientIpv6: Number(o['mask-client-ipv6']),
    dropEcs: Boolean(o['drop-ecs']),
    ...(o['pseudonymize-clients'] === undefined
      ? {}
      : { pseudonymizer: pseudonymizerFrom(String(o['pseudonymize-clients'])) }),
    ...(o.columns === undefined ? {} : { columns: columnsOption(o) }),
  };
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
