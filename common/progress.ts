// A one-line progress bar for interactive use (only drawn when stderr is a TTY).
import type { WriteStream } from 'node:tty';

export class ProgressBar {
  private lastDraw = 0;
  private readonly started = Date.now();
  private readonly enabled: boolean;

  constructor(
    private readonly total: number,
    private readonly out: NodeJS.WriteStream = process.stderr,
    private readonly label = '',
  ) {
    this.enabled = Boolean((out as WriteStream).isTTY);
  }

  /** Cheap to call often: redraws at most every 200 ms. */
  update(done: number, rows: number): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (now - this.lastDraw < 200) return;
    this.lastDraw = now;
    const frac = this.total > 0 ? Math.min(1, done / this.total) : 0;
    const cols = Math.max(10, Math.min(40, ((this.out as WriteStream).columns ?? 80) - 50));
    const filled = Math.round(frac * cols);
    const secs = Math.max(0.001, (now - this.started) / 1000);
    const line =
      `${this.label}[${'#'.repeat(filled)}${'.'.repeat(cols - filled)}] ${(frac * 100).toFixed(0).padStart(3)}% ` +
      `${(done / secs / 1e6).toFixed(1)} MB/s ${rows} rows`;
    this.out.write(`\r${line}\x1b[K`);
  }

  finish(): void {
    if (this.enabled) this.out.write('\r\x1b[K');
  }
}
