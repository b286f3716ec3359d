// The option tables of every subcommand (SPEC §1). Names are part of the contract.
import { hostname } from 'node:os';
import { COMPRESSIONS } from '../enricher/output/compression';
import type { OptionSpec } from './options';

export const OUTPUT_OPTIONS: readonly OptionSpec[] = [
  {
    name: 'output-dir',
    kind: 'string',
    default: './snowtap-out',
    arg: 'DIR',
    help: 'where CSV chunks are written (the blob mount)',
  },
  {
    name: 'rotate-max-rows',
    kind: 'int',
    default: 1_000_000,
    min: 1,
    arg: 'N',
    help: 'commit a chunk after this many rows',
  },
  {
    name: 'rotate-max-bytes',
    kind: 'int',
    default: 256 * 1024 * 1024,
    min: 1024,
    arg: 'N',
    help: 'commit a chunk after this many uncompressed bytes',
  },
  {
    name: 'rotate-max-age',
    kind: 'number',
    default: 60,
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
  { name: 'policy-file', kind: 'string', arg: 'PATH', help: 'policy document (JSON, optionally gzip)' },
  {
    name: 'max-frame-size',
    kind: 'int',
    default: 1 << 20,
    min: 65536,
    max: 64 << 20,
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
];

export const CONVERT_OPTIONS: readonly OptionSpec[] = [...OUTPUT_OPTIONS];
