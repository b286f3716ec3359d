// An injectable time source. The agent's link client (switch timers, the auto-striping tick,
// dial-loop sleeps, keepalive, young-death bookkeeping), its batcher's linger and the
// enricher's per-tenant chunk throttle read it, so tests and the fleet simulator
// (loadtest/simulate.ts, loadtest/sim-clock.ts) drive the same code in simulated time.

/** An opaque timer handle: whatever the clock's setTimeout returned. */
export type TimerHandle = unknown;

export interface Clock {
  /** Milliseconds, monotonic enough for intervals (the real one is Date.now()). */
  now(): number;
  /** `weak`: the timer alone does not keep the process alive (unref). */
  setTimeout(fn: () => void, ms: number, weak?: boolean): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms, weak) {
    const t = setTimeout(fn, ms);
    if (weak) t.unref();
    return t;
  },
  clearTimeout(handle) {
    clearTimeout(handle as NodeJS.Timeout);
  },
};
