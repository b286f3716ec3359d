// Simulated time for the fleet simulator (simulate.ts) and unit tests: a Clock
// (common/clock.ts) whose timers fire only when run() advances
// time. Events at the same instant fire in the order they were scheduled. After every
// timer (and before the first), run() yields one macrotask so the promise chains the real client code starts
// (the dial loop awaits a connection's Welcome) settle before time moves on.

import { setImmediate as yieldMacrotask } from 'node:timers/promises';
import type { Clock, TimerHandle } from '../common/clock';

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

export class SimClock implements Clock {
  private t = 0;
  private seq = 0;
  private readonly heap: Timer[] = [];
  /** Timers fired so far (the simulator's event count). */
  fired = 0;

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer: Timer = { at: this.t + Math.max(0, ms), seq: this.seq++, fn, cancelled: false };
    this.push(timer);
    return timer;
  }

  clearTimeout(handle: TimerHandle): void {
    if (handle !== null && typeof handle === 'object') (handle as Timer).cancelled = true;
  }

  /** Fires every timer due up to `until` (inclusive), in time order; then now() = until. */
  async run(until: number): Promise<void> {
    for (;;) {
      // Settle what the last callback (or the caller, before run()) started: its timers count.
      await yieldMacrotask();
      const top = this.heap[0];
      if (top === undefined || top.at > until) break;
      this.pop();
      if (top.cancelled) continue;
      this.t = top.at;
      this.fired++;
      top.fn();
    }
    this.t = Math.max(this.t, until);
  }

  private less(a: Timer, b: Timer): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private push(x: Timer): void {
    const h = this.heap;
    h.push(x);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
      if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }
}
