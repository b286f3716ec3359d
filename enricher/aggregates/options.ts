// Options of the hourly aggregates (--aggregates, --rows, --aggregates-grace, --aggregates-key):
// defaults and ranges in one place (cli/specs.ts takes them from here), the key file.

import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PARTIAL_DIR } from '../output/layout';
import { keyFromBytes } from '../pipeline/pseudonym';

export const AGGREGATE_MODES = ['off', 'hourly'] as const;
export type AggregateMode = (typeof AGGREGATE_MODES)[number];
export const ROWS_MODES = ['on', 'off'] as const;

export const AGGREGATES_DEFAULTS = { mode: 'off' as AggregateMode, rows: 'on', graceMs: 300_000 } as const;
export const AGGREGATES_RANGES = { graceMs: { min: 0, max: 86_400_000 } } as const;
/** The generated key when --aggregates-key is not given: shared by every pod writing to the output. */
export const GENERATED_KEY_FILE = 'aggregates.key';

export interface AggregatesConfig {
  mode: AggregateMode;
  /** false: --rows off, only aggregates are written. */
  rows: boolean;
  graceMs: number;
  /** The keyed hash's key (unique clients). */
  key: Buffer;
}

export class AggregatesOptionError extends Error {
  override readonly name = 'AggregatesOptionError';
  readonly code = 'SNOWTAP_AGGREGATES_OPTION';
}

/**
 * The key: the file's bytes (at least 16, as --pseudonymize-clients), or, without a file, the
 * one in <outputDir>/_partial/aggregates.key, created once (random 32 bytes, mode 0600) by the
 * first enricher that needs it, so that every pod sharing the output shares the key.
 */
export function aggregatesKey(keyFile: string | undefined, outputDir: string): Buffer {
  if (keyFile !== undefined) {
    let bytes: Buffer;
    try {
      bytes = fs.readFileSync(keyFile);
    } catch (err) {
      throw new AggregatesOptionError(`aggregates-key ${keyFile}: ${(err as Error).message}`);
    }
    try {
      return keyFromBytes(bytes, keyFile);
    } catch (err) {
      throw new AggregatesOptionError(
        `aggregates-key: ${(err as Error).message.replace(/^pseudonymize-clients /, '')}`,
      );
    }
  }
  const dir = path.join(outputDir, PARTIAL_DIR);
  const file = path.join(dir, GENERATED_KEY_FILE);
  fs.mkdirSync(dir, { recursive: true });
  try {
    const fd = fs.openSync(file, 'wx', 0o600);
    try {
      fs.writeSync(fd, randomBytes(32));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const key = fs.readFileSync(file);
  if (key.length < 16)
    throw new AggregatesOptionError(`${file}: ${key.length} bytes, expected 32 (delete it to regenerate)`);
  return key;
}
