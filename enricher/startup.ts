// Start steps that must end: the output directory is created and probed under a deadline (a
// hung blob mount never answers, /proc answers nonsense), and a policy URL that never
// yields a policy stops the enricher after a deadline instead of leaving it unready forever.
// Both end the process with exit 1 and an error naming the problem.
import { constants, promises as fsp } from 'node:fs';
import { mkdirp } from '../common/mkdirp';
import { CodedError, type CodeOf } from '../proto/kit/index';
import { io } from './output/errors';

/** Deadline of the start steps that touch the output directory (mkdir, probe, recovery). */
export const DEFAULT_OUTPUT_START_TIMEOUT_MS = 30_000;

export const EnricherStartErrorCode = {
  /** A start step did not finish within its deadline (the message names the step). */
  START_TIMEOUT: 'ENRICHER_START_TIMEOUT',
  /** --policy-url gave no usable policy within --policy-start-timeout. */
  POLICY_START_TIMEOUT: 'ENRICHER_POLICY_START_TIMEOUT',
} as const;
export type EnricherStartErrorCode = CodeOf<typeof EnricherStartErrorCode>;

export class EnricherStartError extends CodedError<EnricherStartErrorCode> {
  override readonly name = 'EnricherStartError';
}

/** Resolves with `work()`, or rejects with ENRICHER_START_TIMEOUT naming `what` after `ms`. */
export function withDeadline<T>(what: string, ms: number, work: () => Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(
          new EnricherStartError(
            'ENRICHER_START_TIMEOUT',
            `${what} did not finish within ${ms / 1000} s (a hung mount or file system?)`,
          ),
        ),
      ms,
    );
    work().then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (err) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

/** mkdir -p and a write-permission probe of the output directory; OutputError naming it. */
export async function prepareOutputDir(dir: string): Promise<void> {
  await io('mkdir', dir, mkdirp(dir));
  await io('access', dir, fsp.access(dir, constants.W_OK));
}
