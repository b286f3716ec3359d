// Option tables shared by the subcommands that write chunks (enricher, convert); each
// subcommand's own options live next to it. Names are part of the contract; defaults and
// ranges come from the library that owns them.
import { hostname } from 'node:os';
import {
  AGGREGATE_MODES,
  AGGREGATES_DEFAULTS,
  AGGREGATES_RANGES,
  ROWS_MODES,
} from '../enricher/aggregates/options';
import { COMPRESSIONS } from '../enricher/output/compression';
import {
  AZ_ACK_INTERVAL_MS,
  CHUNK_DEFAULTS,
  DEFAULT_STALE_AFTER_MS,
  MAX_ACK_INTERVAL_MS,
  PARTITION_BYS,
  PARTITION_DEFAULTS,
  PARTITION_RANGES,
} from '../enricher/output/index';
import { PRIVACY_DEFAULTS, PRIVACY_RANGES } from '../enricher/pipeline/privacy';
import { DEFAULT_MAX_DATA_FRAME_SIZE } from '../proto/framestream';
import { MAX_FRAME_SIZE_RANGE } from '../proto/link';
import { libraryNumber, type OptionSpec } from './options';

/** What a row holds (issue 9 step 1): client address minimisation and column selection. */
export const ROW_OPTIONS: readonly OptionSpec[] = [
  {
    name: 'mask-client-ipv4',
    kind: 'int',
    ...libraryNumber(PRIVACY_DEFAULTS.maskClientIpv4, PRIVACY_RANGES.maskClientIpv4),
    arg: 'BITS',
    help: 'keep this many leading bits of IPv4 client addresses and ECS (after the policy lookups)',
  },
  {
    name: 'mask-client-ipv6',
    kind: 'int',
    ...libraryNumber(PRIVACY_DEFAULTS.maskClientIpv6, PRIVACY_RANGES.maskClientIpv6),
    arg: 'BITS',
    help: 'keep this many leading bits of IPv6 client addresses and ECS (after the policy lookups)',
  },
  { name: 'drop-ecs', kind: 'bool', default: PRIVACY_DEFAULTS.dropEcs, help: 'leave the ecs column empty' },
  {
    name: 'pseudonymize-clients',
    kind: 'string',
    arg: 'KEYFILE',
    help: 'write keyed pseudonyms (HMAC-SHA-256, 128 bits hex) instead of client addresses; the enricher re-reads the key file every --secret-reload-interval (Secret rotation)',
  },
  {
    name: 'columns',
    kind: 'list',
    arg: 'LIST',
    help: 'write only these columns (comma-separated, schema order, record_id included); default all',
  },
];

/** Hourly aggregates (issue 9 step 3): a second output beside the rows, or instead of them. */
export const AGGREGATE_OPTIONS: readonly OptionSpec[] = [
  {
    name: 'aggregates',
    kind: 'enum',
    values: AGGREGATE_MODES,
    default: AGGREGATES_DEFAULTS.mode,
    help: 'hourly: also write per hour x tenant x network aggregates under aggregates/YYYY/MM/DD/HH/ (off: none)',
  },
  {
    name: 'rows',
    kind: 'enum',
    values: ROWS_MODES,
    default: AGGREGATES_DEFAULTS.rows,
    help: 'off: write no row chunks, only aggregates (needs --aggregates hourly)',
  },
  {
    name: 'aggregates-grace',
    kind: 'number',
    ...libraryNumber(AGGREGATES_DEFAULTS.graceMs, AGGREGATES_RANGES.graceMs, 1000),
    arg: 'SECONDS',
    help: 'publish an hour this long after it ended (late records still count in it)',
  },
  {
    name: 'aggregates-key',
    kind: 'string',
    arg: 'KEYFILE',
    help: 'key of the unique-client sketch hash (>= 16 bytes, same on every pod); default: generated once in <output-dir>/_partial/aggregates.key',
  },
];

export const OUTPUT_OPTIONS: readonly OptionSpec[] = [
  {
    name: 'output-dir',
    kind: 'string',
    default: './snowtap-out',
    arg: 'DIR',
    help: 'where CSV chunks are written (the blob mount); with an s3:// --output-url, the durable local log (a PVC)',
  },
  {
    name: 'output-url',
    kind: 'string',
    arg: 'URL',
    help: 'write chunks natively to az://CONTAINER/PREFIX (staged blocks, Azure credentials from the environment) or s3://BUCKET/PREFIX (local log, one conditional PUT per chunk)',
  },
  {
    name: 'output-stale-after',
    kind: 'number',
    default: DEFAULT_STALE_AFTER_MS / 1000,
    min: 1,
    arg: 'SECONDS',
    help: "a peer's heartbeat this old makes its uncommitted chunks ours to commit",
  },
  {
    name: 'output-ack-interval',
    kind: 'number',
    min: 0,
    max: MAX_ACK_INTERVAL_MS / 1000,
    arg: 'SECONDS',
    help: `acknowledgement-driven block uploads at most this often (az:// default ${AZ_ACK_INTERVAL_MS / 1000}; others 0): Put Block transactions vs ack latency`,
  },
  {
    name: 'rotate-max-rows',
    kind: 'int',
    default: CHUNK_DEFAULTS.maxRows,
    min: 1,
    arg: 'N',
    help: 'commit a chunk after this many rows',
  },
  {
    name: 'rotate-max-bytes',
    kind: 'int',
    default: CHUNK_DEFAULTS.maxBytes,
    min: 1024,
    arg: 'N',
    help: 'commit a chunk after this many uncompressed bytes',
  },
  {
    name: 'rotate-max-age',
    kind: 'number',
    default: CHUNK_DEFAULTS.maxAgeMs / 1000,
    min: 0.1,
    arg: 'SECONDS',
    help: 'commit a chunk this long after its first row',
  },
  {
    name: 'compression',
    kind: 'enum',
    values: COMPRESSIONS,
    // No default here: unset lets --gzip decide, and --gzip with another value is an error.
    help: 'chunk compression: none (default), gzip (.csv.gz), zstd (.csv.zst, Node.js >= 22.15)',
  },
  { name: 'gzip', kind: 'bool', help: 'alias of --compression gzip (--no-gzip: none)' },
  {
    name: 'partition-by',
    kind: 'enum',
    values: PARTITION_BYS,
    default: PARTITION_DEFAULTS.partitionBy,
    help: "tenant: each tenant's rows in chunks of their own under tenant=<name>/YYYY/MM/DD/HH/ (none: one tree)",
  },
  {
    name: 'max-open-tenants',
    kind: 'int',
    ...libraryNumber(PARTITION_DEFAULTS.maxOpenTenants, PARTITION_RANGES.maxOpenTenants),
    arg: 'N',
    help: 'with --partition-by tenant: open tenant chunks at most; the least recently used is published first',
  },
  {
    name: 'tenant-chunk-rate',
    kind: 'number',
    ...libraryNumber(PARTITION_DEFAULTS.tenantChunkRate, PARTITION_RANGES.tenantChunkRate),
    arg: 'PER_SECOND',
    help: 'with --partition-by tenant: tenant chunks opened per second on average beyond --max-open-tenants; faster tenant switching pauses input (bounds files per minute)',
  },
  { name: 'policy-file', kind: 'string', arg: 'PATH', help: 'policy document (JSON, optionally gzip)' },
  {
    name: 'max-frame-size',
    kind: 'int',
    ...libraryNumber(DEFAULT_MAX_DATA_FRAME_SIZE, MAX_FRAME_SIZE_RANGE),
    arg: 'BYTES',
    help: 'largest dnstap data frame accepted; larger ones are skipped and counted',
  },
  {
    name: 'id',
    kind: 'string',
    default: hostname(),
    arg: 'NAME',
    help: 'enricher id written to every row and chunk name (the pod name)',
  },
  ...ROW_OPTIONS,
  ...AGGREGATE_OPTIONS,
];

export const CONVERT_OPTIONS: readonly OptionSpec[] = [...OUTPUT_OPTIONS];
