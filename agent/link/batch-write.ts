// The one place a batch's bytes are handed to a socket (LinkConnection.send). What matters
// here is the frame pool (agent/frame-pool.ts): a stored frame may be reused for another batch
// only once no socket can still send from its memory. Node keeps a reference to a written
// Buffer until the write completes (libuv's write request, or the stream's own queue while
// connecting or corked), whichever connection it was and whatever became of it; the write's
// callback fires once that is over (written, failed, or cancelled when the socket is
// destroyed). So every write of the stored frame itself is counted on the batch and counted
// down by that callback (OutBatch.written, one function per batch: nothing allocated per
// write); BatchBuffer.acked() gives the memory back only at zero.
//
// TLS: TLSSocket's write hands the plaintext to OpenSSL (SSL_write) or, when OpenSSL cannot
// take it yet (handshake), copies it into the TLS wrap's own pending input; the callback
// comes after that, so the same rule holds.
//
// A re-sent or replayed batch goes out as a copy with the resent mark (markResent): the copy
// is not pool memory and needs no count. The original frame is written at most once, on the
// first connection, which may be the stalled or half-open one when the ack comes through
// another.

import { markResent } from '../../proto/link';
import type { OutBatch } from '../buffer';

/** What a batch is written to: net.Socket / tls.TLSSocket (tests pass a fake). */
export interface BatchSink {
  write(chunk: Buffer, cb?: (err?: Error | null) => void): boolean;
}

/** Writes `b` (its `sends` already counts this send); the stored frame's write is counted. */
export function writeBatch(sink: BatchSink, b: OutBatch): void {
  // A batch that may have reached an enricher before says so (LINK.md "Re-sends"): the
  // enricher's hourly aggregates count it in resent_records.
  if (b.sends > 1 || b.replayed) {
    sink.write(markResent(b.frame!));
    return;
  }
  b.socketWrites++;
  sink.write(b.frame!, b.written);
}
