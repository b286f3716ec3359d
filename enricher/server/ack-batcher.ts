// Groups acknowledgements: the flushes that one group-commit fsync resolves all settle in the
// same tick, so the seqs that become durable together leave in one Ack frame, sent on the
// next turn of the event loop. Keeps each seq's arrival time for the ack latency histogram.

import { encodeControl, MessageType } from '../../proto/link/index';

/** Seqs per Ack frame: 8-byte varints stay far below the 64 KiB control body limit. */
export const MAX_SEQS_PER_ACK = 4096;

export class AckBatcher {
  private seqs: number[] = [];
  private times: number[] = [];
  private scheduled = false;

  /** `send` gets every seq that became durable since the last call, with arrival times (performance.now()). */
  constructor(private readonly send: (seqs: number[], receivedAt: number[]) => void) {}

  /** True while acks are waiting for the next tick. */
  get pending(): boolean {
    return this.scheduled;
  }

  add(seq: number, receivedAt: number): void {
    this.seqs.push(seq);
    this.times.push(receivedAt);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.run());
    }
  }

  private run(): void {
    this.scheduled = false;
    const seqs = this.seqs;
    const times = this.times;
    this.seqs = [];
    this.times = [];
    this.send(seqs, times);
  }
}

/** The Ack frames for `seqs`, split so that no body exceeds the control limit. */
export function ackFrames(seqs: readonly number[]): Buffer[] {
  const frames: Buffer[] = [];
  for (let i = 0; i < seqs.length; i += MAX_SEQS_PER_ACK) {
    frames.push(encodeControl(MessageType.ACK, { seqs: seqs.slice(i, i + MAX_SEQS_PER_ACK) }));
  }
  return frames;
}
