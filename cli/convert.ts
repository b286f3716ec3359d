// `snowtap convert FILE...`: offline backfill of capture files into CSV chunks.
import { createLogger } from '../common/log';
import { convertFiles } from '../enricher/convert';
import type * as PolicyModule from '../enricher/policy/index';
import { formatHelp, logSettings, parseCommand, UsageError } from './options';
import { aggregatesOption, outputOptions, partitionOptions, rowOptions } from './shared';
import { CONVERT_OPTIONS } from './specs';

export const CONVERT_HELP = formatHelp(
  'snowtap convert [options] FILE...',
  'Convert dnstap Frame Streams capture files into the CSV chunks an enricher writes.',
  CONVERT_OPTIONS,
);

export async function convertMain(argv: readonly string[]): Promise<number> {
  const cmd = parseCommand(argv, CONVERT_OPTIONS, process.env, { positionals: true });
  if (cmd.help) {
    process.stdout.write(CONVERT_HELP);
    return 0;
  }
  if (cmd.positionals.length === 0) throw new UsageError('convert needs at least one capture FILE');
  const o = cmd.options;
  const log = createLogger('convert', logSettings(cmd.options));
  // The policy code (a document parser, its validators, a load worker) only when one is given.
  const policy = o['policy-file']
    ? await (require('../enricher/policy/index') as typeof PolicyModule).loadPolicyFile(
        String(o['policy-file']),
      )
    : null;
  if (policy)
    log.info(
      { version: policy.version, domains: policy.domainCount, networks: policy.networkCount },
      'policy loaded',
    );
  const s = await convertFiles({
    files: cmd.positionals,
    output: outputOptions(o),
    partition: partitionOptions(o),
    policy,
    rows: rowOptions(o),
    aggregates: aggregatesOption(o),
    maxDataFrameSize: Number(o['max-frame-size']),
    log,
    progress: process.stderr,
  });
  const rate = s.seconds > 0 ? Math.round(s.frames / s.seconds) : 0;
  process.stdout.write(
    `converted ${s.files} file(s): ${s.frames} frames, ${s.rows} rows, ${s.chunks} chunk(s), ` +
      `${s.dropped} dropped, ${s.dnsErrors} DNS parse errors, ${s.oversize} oversize frames skipped, ` +
      `${s.failedFiles} file error(s), ${s.seconds.toFixed(2)} s, ${rate} records/s -> ${o['output-dir']}` +
      (s.aggregateFiles > 0 ? `; ${s.aggregateFiles} aggregate file(s)` : '') +
      '\n',
  );
  return s.failedFiles > 0 ? 1 : 0;
}
