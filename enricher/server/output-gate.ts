// The one place where rows meet the ChunkWriter: the pipeline's sink, the durability point
// for acks (flush) and the backpressure signal for every input. The writer keeps accepting
// rows above its high-water mark (it only says so), so inputs must look at `full`: link
// connections stop reading their sockets until drained, the dnstap listener drops.

import type { ChunkWriter } from '../output/index';
import type { RowSink } from '../pipeline/pipeline';

export class OutputGate implements RowSink {
  /** True from the append that crossed the high-water mark until the writer drained. */
  full = false;
  private waiters: (() => void)[] = [];

  constructor(readonly writer: ChunkWriter) {}

  /** Hot path, one call per row: see ChunkWriter.beginRow. Throws the writer's sticky failure (or OUTPUT_CLOSED). */
  beginRow(room: number): number {
    return this.writer.beginRow(room);
  }

  get rowTarget(): Buffer {
    return this.writer.rowTarget;
  }

  endRow(end: number): void {
    if (!this.writer.endRow(end) && !this.full) {
      this.full = true;
      // whenDrained() also settles when the writer fails: waiters then meet the failure.
      const drained = () => this.drained();
      this.writer.whenDrained().then(drained, drained);
    }
  }

  /** Resolves once every row appended before the call is durable (group-commit fsync). */
  flush(): Promise<void> {
    return this.writer.flush();
  }

  /** Calls `fn` once when the writer is below its low-water mark (at once if not full). */
  onDrained(fn: () => void): void {
    if (!this.full) fn();
    else this.waiters.push(fn);
  }

  private drained(): void {
    this.full = false;
    const ws = this.waiters;
    this.waiters = [];
    for (const fn of ws) fn();
  }
}
