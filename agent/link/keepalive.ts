// The link keepalive of one connection (LINK.md "Keepalive"), on the link client's Clock so
// that tests drive it in simulated time: while the connection is open, a Ping goes out when
// nothing was sent for one interval, and the peer is declared dead when nothing arrived for
// KEEPALIVE_MISSES intervals. Checked every half interval (at least every 250 ms).

import type { Clock, TimerHandle } from '../../common/clock';
import { KEEPALIVE_MISSES } from '../../proto/link';
/** Shortest check period, whatever the interval. */
export const MIN_CHECK_MS = 250;

export interface KeepaliveHooks {
  /** Nothing was sent for one interval: send a Ping. */
  ping(): void;
  /** Nothing was received for KEEPALIVE_MISSES intervals (`silentMs`): the peer is gone. */
  dead(silentMs: number): void;
}

export class Keepalive {
  private lastSent: number;
  private lastReceived: number;
  private timer: TimerHandle | null = null;

  constructor(
    private readonly clock: Clock,
    private readonly hooks: KeepaliveHooks,
  ) {
    this.lastSent = this.lastReceived = clock.now();
  }

  /** Call on every frame written. */
  sent(): void {
    this.lastSent = this.clock.now();
  }

  /** Call on every chunk of bytes received. */
  received(): void {
    this.lastReceived = this.clock.now();
  }

  /** Starts checking at `intervalMs` (0: off; TCP keepalive only). */
  start(intervalMs: number): void {
    this.stop();
    if (intervalMs <= 0) return;
    const period = Math.max(MIN_CHECK_MS, intervalMs / 2);
    const check = () => {
      this.timer = null;
      const now = this.clock.now();
      const silent = now - this.lastReceived;
      if (silent >= KEEPALIVE_MISSES * intervalMs) {
        this.hooks.dead(silent);
        return;
      }
      if (now - this.lastSent >= intervalMs) this.hooks.ping();
      this.timer = this.clock.setTimeout(check, period, true);
    };
    this.timer = this.clock.setTimeout(check, period, true);
  }

  stop(): void {
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
  }
}
