// --dnstap-listen: dnstap Frame Streams straight from a DNS server, no agent in between.
// The FrameStreamServer keeps reading always (a DNS server must never block on us), so this
// sink drops, visibly, while the writer is above its high-water mark instead of pausing.
//
// There are no acks and no re-sends here, so record ids only need to be unique:
// `dnstap-<enricher id>-<writer incarnation>-<connection id>/<seq>/<index>`, with seq moving
// on every FRAMES_PER_SEQ frames so that ids stay short.

import type { ConnectionInfo, FrameSink } from '../../common/framestream-server';
import type { RowSink } from '../pipeline/pipeline';
import { RowSource } from '../pipeline/row-encoder';
import type { RecordProcessor } from './options';

export const FRAMES_PER_SEQ = 1000;

interface Source {
  row: RowSource;
  seq: number;
  index: number;
}

export class DnstapInputStats {
  frames = 0;
  /** Dropped before decoding because the output was above its high-water mark. */
  droppedBackpressure = 0;
  /** Frames the pipeline dropped (undecodable dnstap, no message). */
  droppedDecode = 0;
}

export class DnstapInput implements FrameSink {
  readonly stats = new DnstapInputStats();
  private readonly sources = new Map<number, Source>();

  constructor(
    private readonly prefix: string,
    private readonly pipeline: RecordProcessor,
    private readonly output: Pick<RowSink, 'full'>,
  ) {}

  /** Hot path: one call per data frame. */
  onFrame(buf: Buffer, start: number, end: number, conn: ConnectionInfo): void {
    this.stats.frames++;
    if (this.output.full) {
      this.stats.droppedBackpressure++;
      return;
    }
    let s = this.sources.get(conn.id);
    if (s === undefined) {
      s = { row: new RowSource(`${this.prefix}-${conn.id}`, ''), seq: 1, index: 0 };
      this.sources.set(conn.id, s);
    }
    if (!this.pipeline.process(buf, start, end, s.row, s.seq, s.index)) this.stats.droppedDecode++;
    if (++s.index === FRAMES_PER_SEQ) {
      s.seq++;
      s.index = 0;
    }
  }

  /** Forgets a closed connection's counters (its ids can never recur: connection ids are unique). */
  forget(connId: number): void {
    this.sources.delete(connId);
  }
}
