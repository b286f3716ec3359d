// Option-to-config mapping shared by the subcommands that write chunks.
import type { ChunkWriterOptions } from '../enricher/output/index';
import type { OptionValues } from './options';

export function outputOptions(o: OptionValues): Omit<ChunkWriterOptions, 'onCommit'> {
  return {
    outputDir: String(o['output-dir']),
    enricherId: String(o.id),
    maxRows: Number(o['rotate-max-rows']),
    maxBytes: Number(o['rotate-max-bytes']),
    maxAgeMs: Number(o['rotate-max-age']) * 1000,
    gzip: Boolean(o.gzip),
  };
}
