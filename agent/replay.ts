// --input-file: a capture replayed through the agent with backpressure instead of drops.
// readFrameStreamFile awaits its onProgress hook after every block, so the hook is where
// the reader pauses: while the buffer is full, and while the rate limit is in debt.
// Done (true) only when every batch is acknowledged; never true with anything unacked.

import type { Logger } from '../common/log';
import { type DataFrameHandler, readFrameStreamFile } from '../proto/framestream';
import type { TokenBucket } from './admission';
import { AgentError, AgentErrorCode } from './errors';

/** Bytes read per step: the most the buffer can overshoot its bound by while replaying. */
export const REPLAY_BLOCK_SIZE = 256 * 1024;

/** What a replay needs of the agent, and no more. */
export interface ReplayTarget {
  /** One call per data frame; records are never dropped for the rate limit, only delayed. */
  onData: DataFrameHandler;
  /** A frame above maxFrameSize was skipped: count it. */
  onOversize(): void;
  /** The file is read: seal the open batch. */
  flush(): void;
  /** The buffer is at its bound: the reader waits. */
  full(): boolean;
  /** Every batch acknowledged, spool included. */
  allAcked(): boolean;
  isStopping(): boolean;
  /** Resolves when cond() holds or after ms (0 = never gives up); true if cond() held. */
  waitUntil(cond: () => boolean, ms: number): Promise<boolean>;
}

export interface ReplayOptions {
  file: string;
  maxFrameSize: number;
  /** 0: wait for acknowledgements without a deadline. */
  inputTimeoutMs: number;
  /** The rate limit; the reader sleeps off its debt. */
  bucket: TokenBucket | null;
  log: Logger;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function replayFile(target: ReplayTarget, o: ReplayOptions): Promise<boolean> {
  const { file, bucket } = o;
  const started = Date.now();
  const left = () => (o.inputTimeoutMs > 0 ? Math.max(1, started + o.inputTimeoutMs - Date.now()) : 0);
  const stopped = () => new AgentError(AgentErrorCode.INVALID_STATE, 'replay interrupted by stop()');
  let timedOut = false;
  try {
    const result = await readFrameStreamFile(file, target.onData, {
      maxDataFrameSize: o.maxFrameSize,
      blockSize: REPLAY_BLOCK_SIZE,
      onOversize: () => target.onOversize(),
      onProgress: async () => {
        if (bucket !== null) {
          const debt = bucket.debtMs();
          if (debt > 0) await sleep(debt);
        }
        if (target.full()) {
          const room = await target.waitUntil(() => !target.full() || target.isStopping(), left());
          if (!room) timedOut = true;
        }
        if (timedOut || target.isStopping()) throw stopped();
      },
    });
    target.flush();
    o.log.info(
      { file, frames: result.frames, bytes: result.bytes },
      'capture read; waiting for acknowledgements',
    );
  } catch (err) {
    if (err instanceof AgentError && err.code === AgentErrorCode.INVALID_STATE) {
      o.log.error(
        { file, timedOut },
        timedOut ? 'replay timed out' : 'replay stopped before the end of the file',
      );
      return false;
    }
    throw err;
  }
  const done = await target.waitUntil(() => target.allAcked() || target.isStopping(), left());
  const acked = target.allAcked();
  if (!acked) o.log.error({ file, timedOut: !done }, 'replay: not everything was acknowledged');
  return acked;
}
