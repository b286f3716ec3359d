// Option-to-config mapping shared by the subcommands that write chunks (enricher, convert).
// The agent never imports this file (it would load the CSV writer and the row pipeline):
// what it shares with the enricher lives in ./token.
import { type AggregateMode, type AggregatesConfig, aggregatesKey } from '../enricher/aggregates/options';
import { type Compression, ZSTD_MIN_NODE, zstdAvailable } from '../enricher/output/compression';
import { headerBytesFor, parseColumnList } from '../enricher/output/csv';
import {
  type ChunkWriterOptions,
  type PartitionBy,
  type PartitionOptions,
  parseOutputUrl,
} from '../enricher/output/index';
import type { RowOptions } from '../enricher/pipeline/pipeline';
import { Pseudonymizer } from '../enricher/pipeline/pseudonym';
import { type OptionValues, UsageError } from './options';

export function outputOptions(o: OptionValues): Omit<ChunkWriterOptions, 'onCommit'> {
  return {
    outputDir: String(o['output-dir']),
    ...(o['output-url'] === undefined ? {} : { outputUrl: outputUrlOption(String(o['output-url'])) }),
    staleAfterMs: Math.round(Number(o['output-stale-after']) * 1000),
    ...(o['output-ack-interval'] === undefined
      ? {}
      : { ackIntervalMs: Math.round(Number(o['output-ack-interval']) * 1000) }),
    enricherId: String(o.id),
    maxRows: Number(o['rotate-max-rows']),
    maxBytes: Number(o['rotate-max-bytes']),
    maxAgeMs: Number(o['rotate-max-age']) * 1000,
    compression: compressionOption(o),
    ...(o.columns === undefined ? {} : { header: headerBytesFor(columnsOption(o)) }),
  };
}

/** --partition-by, --max-open-tenants, --tenant-chunk-rate. */
export function partitionOptions(o: OptionValues): PartitionOptions {
  return {
    partitionBy: String(o['partition-by']) as PartitionBy,
    maxOpenTenants: Number(o['max-open-tenants']),
    tenantChunkRate: Number(o['tenant-chunk-rate']),
  };
}

/** --output-url, checked here so a bad URL is a usage error naming the problem. */
function outputUrlOption(url: string): string {
  try {
    return parseOutputUrl(url).href;
  } catch (err) {
    throw new UsageError(`--output-url: ${(err as Error).message}`);
  }
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

/** --aggregates, --rows, --aggregates-grace, --aggregates-key; null when aggregates are off. */
export function aggregatesOption(o: OptionValues): AggregatesConfig | null {
  const mode = String(o.aggregates ?? 'off') as AggregateMode;
  const rows = String(o.rows ?? 'on') !== 'off';
  if (mode === 'off') {
    if (!rows) throw new UsageError('--rows off needs --aggregates hourly: nothing would be written');
    if (o['aggregates-key'] !== undefined) throw new UsageError('--aggregates-key needs --aggregates hourly');
    return null;
  }
  if (o['output-url'] !== undefined)
    throw new UsageError(
      '--aggregates hourly with --output-url is not supported yet: aggregate files are written to --output-dir only (use a mounted directory)',
    );
  let key: Buffer;
  try {
    key = aggregatesKey(
      o['aggregates-key'] === undefined ? undefined : String(o['aggregates-key']),
      String(o['output-dir']),
    );
  } catch (err) {
    throw new UsageError(`--${(err as Error).message}`);
  }
  return { mode, rows, graceMs: Math.round(Number(o['aggregates-grace']) * 1000), key };
}
