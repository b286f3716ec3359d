// A synthetic DNS server for load tests: connects to an agent's dnstap socket (unix path, or
// TCP HOST:PORT) as a bidirectional Frame Streams sender (READY -> ACCEPT -> START ... STOP ->
// FINISH) and sends SyntheticTraffic frames at a steady rate: by default a burst every 10 ms,
// many frames per socket write; --tick-ms and --frames-per-write make it write like a DNS
// server (unbound writes one frame per write).
//
// Pacing is a token bucket refilled every tick. A real DNS server never waits for its dnstap
// reader, so neither do we: when the socket's send queue is above a bound (the agent stopped
// reading), or we fall behind by more than the burst, the missed frames are not sent and are
// counted as `framesBehind`. `framesSent` counts only frames handed to the socket, which is
// the number the end-to-end loss check compares with the CSV rows.

import net from 'node:net';
import { type ControlFrame, FrameDecoder, FramePacker, WriterSession } from '../proto/framestream/index';
import { SyntheticTraffic } from './synthetic';

/** Refill period of the token bucket (default): every tick sends its frames as one burst. */
export const PRODUCER_TICK_MS = 10;
/** At most this much time's worth of frames in one burst (after a stall, the rest is skipped). */
const MAX_BURST_MS = 100;
/** Send queue above which we send nothing (the agent is not reading). */
const MAX_QUEUED_BYTES = 4 << 20;
/** Connect retries until the agent's socket exists, and the READY/ACCEPT and STOP/FINISH waits. */
const CONNECT_TIMEOUT_MS = 10_000;
const CONTROL_TIMEOUT_MS = 10_000;
/** Room for one synthetic payload (a few hundred bytes in practice). */
const SCRATCH_BYTES = 64 * 1024;

export interface ProducerOptions {
  /** Unix socket path, or HOST:PORT for TCP. */
  socket: string;
  /** Frames per second (> 0). */
  rate: number;
  seed?: number;
  /** dnstap identity (the "DNS server" name). */
  identity?: string;
  connectTimeoutMs?: number;
  /** Refill period: the frames a tick allows leave as one burst (default PRODUCER_TICK_MS). */
  tickMs?: number;
  /**
   * At most this many frames per socket write; 0 (default): as many as fit in the packer
   * (256 KiB). A DNS server writes far less at a time: unbound one frame per write, BIND
   * (libfstrm) a few KiB; the reader's frames per read, and so its cost, depend on it.
   */
  framesPerWrite?: number;
}

export interface ProducerStats {
  framesSent: number;
  bytesSent: number;
  /** Socket writes of data frames. */
  writes: number;
  /** Frames the schedule asked for but that were not sent (stalled socket or event loop). */
  framesBehind: number;
  /** Seconds between START and STOP. */
  seconds: number;
  /** True when the receiver answered STOP with FINISH. */
  finished: boolean;
  error: string | null;
}

function connectOnce(target: string): Promise<net.Socket> {
  const m = /^(.*):(\d+)$/.exec(target);
  const opts: net.NetConnectOpts =
    m && !target.includes('/')
      ? { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) }
      : { path: target };
  return new Promise((resolve, reject) => {
    const sock = net.createConnection(opts);
    sock.once('connect', () => {
      sock.off('error', reject);
      resolve(sock);
    });
    sock.once('error', reject);
  });
}

export class DnstapProducer {
  readonly stats: ProducerStats = {
    framesSent: 0,
    bytesSent: 0,
    writes: 0,
    framesBehind: 0,
    seconds: 0,
    finished: false,
    error: null,
  };
  private readonly o: ProducerOptions;
  private readonly traffic: SyntheticTraffic;
  private readonly packer = new FramePacker();
  private readonly scratch = Buffer.allocUnsafe(SCRATCH_BYTES);
  private readonly session = new WriterSession({ bidirectional: true });
  private sock: net.Socket | null = null;
  private timer: NodeJS.Timeout | null = null;
  private rate: number;
  private readonly tickMs: number;
  private readonly framesPerWrite: number;
  private tokens = 0;
  private last = 0;
  private startedAt = 0;
  private onControl: ((f: ControlFrame) => void) | null = null;
  /** Rejects the pending ACCEPT/FINISH wait when the connection fails first. */
  private abortWait: ((err: Error) => void) | null = null;

  constructor(o: ProducerOptions) {
    if (!(o.rate > 0) || !Number.isFinite(o.rate))
      throw new RangeError(`producer rate: expected > 0, got ${o.rate}`);
    this.o = o;
    this.rate = o.rate;
    this.tickMs = o.tickMs ?? PRODUCER_TICK_MS;
    if (!Number.isInteger(this.tickMs) || this.tickMs < 1)
      throw new RangeError(`producer tickMs: expected an integer >= 1, got ${o.tickMs}`);
    const fpw = o.framesPerWrite ?? 0;
    if (!Number.isInteger(fpw) || fpw < 0)
      throw new RangeError(`producer framesPerWrite: expected an integer >= 0, got ${o.framesPerWrite}`);
    this.framesPerWrite = fpw === 0 ? Number.POSITIVE_INFINITY : fpw;
    this.traffic = new SyntheticTraffic({ seed: o.seed ?? 1, identity: o.identity ?? 'loadtest-resolver' });
  }

  /** Changes the send rate from the next tick on (a load profile's steps). */
  setRate(rate: number): void {
    if (!(rate > 0) || !Number.isFinite(rate))
      throw new RangeError(`producer rate: expected > 0, got ${rate}`);
    this.rate = rate;
  }

  /** Connects (retrying until the agent listens), completes the handshake, starts sending. */
  async start(): Promise<void> {
    const deadline = Date.now() + (this.o.connectTimeoutMs ?? CONNECT_TIMEOUT_MS);
    let sock: net.Socket;
    for (;;) {
      try {
        sock = await connectOnce(this.o.socket);
        break;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`producer: cannot connect to ${this.o.socket}: ${err}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    this.sock = sock;
    const decoder = new FrameDecoder({ onData: () => {}, onControl: (f) => this.onControl?.(f) });
    sock.on('data', (chunk: Buffer) => {
      try {
        decoder.write(chunk);
      } catch (err) {
        this.fail(`bad control frame from the agent: ${err}`);
      }
    });
    sock.on('error', (err) => this.fail(`socket error: ${err.message}`));
    sock.on('close', () => {
      if (this.session.state !== 'finished') this.fail('the agent closed the connection');
    });
    try {
      await this.control(() => sock.write(this.session.open()), 'ACCEPT');
    } catch (err) {
      sock.destroy();
      this.sock = null;
      throw err;
    }
    this.startedAt = this.last = performance.now();
    this.timer = setInterval(() => this.tick(), this.tickMs);
  }

  /** Sends `send()`'s bytes and waits for the control frame the session expects next. */
  private control(send: () => void, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`producer: no ${what} within ${CONTROL_TIMEOUT_MS} ms`)),
        CONTROL_TIMEOUT_MS,
      );
      this.abortWait = (err) => {
        clearTimeout(timer);
        reject(err);
      };
      this.onControl = (f) => {
        try {
          const reply = this.session.onControl(f);
          if (reply !== null) this.sock!.write(reply);
          clearTimeout(timer);
          resolve();
        } catch (err) {
          clearTimeout(timer);
          reject(err);
        }
      };
      send();
    });
  }

  private tick(): void {
    const sock = this.sock;
    if (sock === null || this.stats.error !== null) return;
    const now = performance.now();
    this.tokens += ((now - this.last) * this.rate) / 1000;
    this.last = now;
    const cap = Math.max(1, (this.rate * MAX_BURST_MS) / 1000);
    if (this.tokens > cap) {
      this.stats.framesBehind += Math.floor(this.tokens - cap);
      this.tokens = cap;
    }
    if (sock.writableLength > MAX_QUEUED_BYTES) return;
    const n = Math.floor(this.tokens);
    this.tokens -= n;
    const packer = this.packer;
    const perWrite = this.framesPerWrite;
    for (let i = 0; i < n; i++) {
      const len = this.traffic.next(this.scratch, 0);
      if (packer.frames >= perWrite || !packer.append(this.scratch, 0, len)) {
        this.send(packer.frames, packer.take());
        packer.append(this.scratch, 0, len);
      }
    }
    if (packer.length > 0) this.send(packer.frames, packer.take());
  }

  private send(frames: number, bytes: Buffer): void {
    this.stats.framesSent += frames;
    this.stats.bytesSent += bytes.length;
    this.stats.writes++;
    this.sock!.write(bytes);
  }

  private fail(message: string): void {
    if (this.stats.error === null) this.stats.error = message;
    this.abortWait?.(new Error(`producer: ${message}`));
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** Stops sending, STOP -> FINISH (the agent has read everything), closes. */
  async stop(): Promise<ProducerStats> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    const sock = this.sock;
    if (sock === null) return this.stats;
    this.stats.seconds = (performance.now() - this.startedAt) / 1000;
    if (this.stats.error === null && this.session.streaming) {
      try {
        await this.control(() => sock.write(this.session.stop()), 'FINISH');
        this.stats.finished = true;
      } catch (err) {
        this.fail(String(err));
      }
    }
    await new Promise<void>((resolve) => {
      if (sock.destroyed) return resolve();
      sock.once('close', () => resolve());
      sock.end();
    });
    this.sock = null;
    return this.stats;
  }
}

/** Runs one producer for `seconds`, then stops it; for the CLI. */
export async function runProducer(o: ProducerOptions & { seconds: number }): Promise<ProducerStats> {
  const p = new DnstapProducer(o);
  await p.start();
  await new Promise((r) => setTimeout(r, o.seconds * 1000));
  return p.stop();
}
