// The link client's time source. Switch timers, the auto-striping tick, dial-loop sleeps
// and young-death bookkeeping read it, so tests and the fleet simulator
// (loadtest/simulate.ts) can drive the same code in simulated time.

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
