// --input-file: a capture replayed through the agent with backpressure instead of drops.
// readFrameStreamFile awaits its onProgress hook after every block, so the hook is where
// the reader pauses: while the buffer is full, and while the rate limit is in debt.
// Done (true) only when every batch is acknowledged; never true with anything unacked.

import { type DataFrameHandler, readFrameStreamFile } from '../proto/framestream';
import type { TokenBucket } from './admission';
import type { Agent } from './agent';
import { AgentError, AgentErrorCode } from './errors';

/** Bytes read per step: the most the buffer can overshoot its bound by while replaying. */
export const REPLAY_BLOCK_SIZE = 256 * 1024;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function replayFile(
  agent: Agent,
  file: string,
  onData: DataFrameHandler,
  bucket: TokenBucket | null,
): Promise<boolean> {
  const o = agent.options;
  const started = Date.now();
  const left = () => (o.inputTimeoutMs > 0 ? Math.max(1, started + o.inputTimeoutMs - Date.now()) : 0);
  const stopped = () => new AgentError(AgentErrorCode.INVALID_STATE, 'replay interrupted by stop()');
  let timedOut = false;
  try {
    const result = await readFrameStreamFile(file, onData, {
      maxDataFrameSize: o.maxFrameSize,
      blockSize: REPLAY_BLOCK_SIZE,
      onOversize: () => agent.drop('oversize', 1),
      onProgress: async () => {
        if (bucket !== null) {
          const debt = bucket.debtMs();
          if (debt > 0) await sleep(debt);
        }
        if (agent.buffer.full) {
          const room = await agent.waitUntil(() => !agent.buffer.full || agent.isStopping, left());
          if (!room) timedOut = true;
        }
        if (timedOut || agent.isStopping) throw stopped();
      },
    });
    agent.flush();
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
  const done = await agent.waitUntil(() => agent.buffer.allAcked() || agent.isStopping, left());
  const acked = agent.buffer.allAcked();
  if (!acked) o.log.error({ file, timedOut: !done }, 'replay: not everything was acknowledged');
  return acked;
}
