// Public surface of the CSV chunk output: row helpers for the encoder, the writer, recovery.

export { type AzureRecoveryResult, azureContainer, recoverAzure } from './azure-store';
export type { CommitInfo } from './chunk-sink';
export { ChunkWriter, type ChunkWriterStats } from './chunk-writer';
export { COMPRESSIONS, type Compression, ZSTD_MIN_NODE, zstdAvailable } from './compression';
export {
  COLUMN_TYPES,
  COLUMNS,
  type ColumnName,
  csvBytesFieldMaxBytes,
  csvFieldMaxBytes,
  csvFieldNeedsQuoting,
  HEADER_BYTES,
  HEADER_ROW,
  ROW_TERMINATOR,
  writeCsvBytesField,
  writeCsvField,
  writeCsvQuotedEmpty,
} from './csv';
export { OutputError, type OutputErrorCode } from './errors';
export { OUTPUT_URL_SCHEMES, type OutputUrl, parseOutputUrl } from './object-url';
export {
  AZ_ACK_INTERVAL_MS,
  CHUNK_DEFAULTS,
  type ChunkWriterOptions,
  MAX_ACK_INTERVAL_MS,
  resolveOptions as checkChunkWriterOptions,
} from './options';
export {
  checkPartitionOptions,
  createOutputWriter,
  escapeTenant,
  PARTITION_BYS,
  PARTITION_DEFAULTS,
  PARTITION_RANGES,
  type PartitionBy,
  PartitionedWriter,
  type PartitionOptions,
  type PartitionStats,
  parseTenantDir,
  tenantDir,
} from './partition';
export { probeOutput } from './probe';
export {
  DEFAULT_STALE_AFTER_MS,
  type RecoveryOptions,
  type RecoveryResult,
  recoverPartials,
} from './recovery';
export { s3Client, s3Publisher } from './s3-store';
