// Which records enter a batch: sampling (--sample N, every|random) and the rate limit
// (--rate-limit, a token bucket). Both sit on the per-record path: no allocation, a clock
// read only when the bucket runs dry.

import type { SampleMode } from './options';

/** Keeps one record in N: every Nth (deterministic) or each with probability 1/N. */
export class Sampler {
  private countdown = 0;
  private readonly p: number;

  constructor(
    readonly n: number,
    readonly mode: SampleMode,
  ) {
    this.p = 1 / n;
  }

  /** True when the record is kept. The first record is always kept in `every` mode. */
  keep(): boolean {
    if (this.n === 1) return true;
    if (this.mode === 'random') return Math.random() < this.p;
    if (this.countdown === 0) {
      this.countdown = this.n - 1;
      return true;
    }
    this.countdown--;
    return false;
  }

  /** Batch.sample_rate: each kept record stands for N (0 = absent = 1 on the wire). */
  get sampleRate(): number {
    return this.n === 1 ? 0 : this.n;
  }
}

/**
 * Token bucket: `rate` tokens per second, holding at most one second's worth (min 1), so
 * a quiet spell allows a burst of at most one second of traffic.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;
  private readonly burst: number;

  constructor(
    readonly rate: number,
    private readonly now: () => number = performance.now.bind(performance),
  ) {
    this.burst = Math.max(1, rate);
    this.tokens = this.burst;
    this.last = this.now();
  }

  /** Live input: takes a token or says no (the caller drops and counts). */
  take(): boolean {
    if (this.tokens >= 1) {
      this.tokens--;
      return true;
    }
    this.refill();
    if (this.tokens >= 1) {
      this.tokens--;
      return true;
    }
    return false;
  }

  /** File replay: always takes, possibly into debt; the reader then waits debtMs(). */
  takeDebt(): void {
    this.tokens--;
  }

  /** Milliseconds until the debt is paid back (0 when there is none). */
  debtMs(): number {
    this.refill();
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens / this.rate) * 1000);
  }

  private refill(): void {
    const t = this.now();
    const add = ((t - this.last) / 1000) * this.rate;
    this.last = t;
    this.tokens = Math.min(this.burst, this.tokens + add);
  }
}
