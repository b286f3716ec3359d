// The agent: dnstap in (sockets or a capture file), sampling and rate limit, batches,
// buffer (+ spool), link out, and the orderly stop. Wires the parts; each part says why
// it works the way it does. Data flows one way: input -> batcher -> buffer -> link client;
// the client takes from the buffer when told something is sendable, and the batcher reads
// the frame limit the client agreed with the enrichers. The process around it (ops
// endpoint, discovery, exit code) is process.ts.
//
// Live input never waits: a record is copied into the open batch or dropped and counted.
// A replayed file is the opposite: the reader pauses while the buffer is full, and the
// replay is done only when every batch is acknowledged.

import { FrameStreamServer, type ListenResult } from '../common/framestream-server';
import type { Readiness } from '../common/ops-server';
import {
  checkTlsMaterial,
  readOrEmpty,
  SecretWatch,
  type TlsMaterial,
  tokenFromBytes,
} from '../common/secret-files';
import { Sampler, TokenBucket } from './admission';
import { Batcher } from './batcher';
import { BatchBuffer, DROP_REASONS, type DropReason } from './buffer';
import type * as EdgeMaskModule from './edge-mask';
import type { EdgeMask } from './edge-mask';
import { AgentError, AgentErrorCode } from './errors';
import { FramePool } from './frame-pool';
import { LinkClient } from './link';
import { type AgentOptions, type ResolvedAgentOptions, resolveAgentOptions } from './options';
import { type ReplayTarget, replayFile } from './replay';
import { Spool } from './spool';

/** stop(): producers get this long to deliver what is in flight after we half-close. */
export const INPUT_CLOSE_GRACE_MS = 2_000;

export interface AgentCounters {
  recordsIn: number;
  bytesIn: number;
  /** Not a drop: sample_rate accounts for them. */
  sampledOut: number;
  /** Records dropped, by reason (input oversize frames included). */
  dropped: Record<DropReason, number>;
  batchesSealed: number;
}

export interface StopSummary {
  /** Records still unacknowledged at the end: written to the spool, or lost. */
  spooled: number;
  lost: number;
}

export class Agent {
  readonly options: ResolvedAgentOptions;
  readonly counters: AgentCounters;
  readonly buffer: BatchBuffer;
  readonly client: LinkClient;
  server: FrameStreamServer | null = null;
  spool: Spool | null = null;
  private batcher: Batcher | null = null;
  private readonly sampler: Sampler;
  private readonly bucket: TokenBucket | null;
  /** --mask-client-* / --drop-ecs: rewrites each kept frame in place; null when off. */
  private readonly edgeMask: EdgeMask | null;
  private readonly fileMode: boolean;
  /** Sealed frames' memory, reused once acknowledged (agent/frame-pool.ts). */
  readonly framePool = new FramePool();
  private state: 'new' | 'starting' | 'running' | 'stopping' | 'stopped' = 'new';
  private stopping: Promise<StopSummary> | null = null;
  /** Secret files re-read while running (token, certificates). */
  readonly secrets: SecretWatch<unknown>[] = [];

  constructor(options: AgentOptions) {
    const o = (this.options = resolveAgentOptions(options));
    this.fileMode = o.inputFile !== undefined;
    const dropped = {} as Record<DropReason, number>;
    for (const r of DROP_REASONS) dropped[r] = 0;
    this.counters = { recordsIn: 0, bytesIn: 0, sampledOut: 0, dropped, batchesSealed: 0 };
    this.sampler = new Sampler(o.sample, o.sampleMode);
    this.bucket = o.rateLimit > 0 ? new TokenBucket(o.rateLimit) : null;
    // The masker (and the DNS parser it needs) is loaded only when masking is configured: the
    // default sidecar does not carry that code (lean sidecar, loadtest/PERFORMANCE.md "What changed, measured").
    const masking = o.dropEcs || o.maskClientIpv4 !== 32 || o.maskClientIpv6 !== 128;
    this.edgeMask = masking ? (require('./edge-mask') as typeof EdgeMaskModule).EdgeMask.from(o) : null;
    this.buffer = new BatchBuffer({
      bufferBytes: o.bufferBytes,
      whenFull: o.whenFull,
      log: o.log,
      onDrop: (reason, records) => this.drop(reason, records),
      pool: this.framePool,
    });
    this.client = new LinkClient({ ...o, endpoints: o.enrichers, agentId: o.id, buffer: this.buffer });
  }

  /** Reads the spool, starts the link, then opens the dnstap listeners (if any). */
  async start(): Promise<ListenResult> {
    if (this.state !== 'new')
      throw new AgentError(AgentErrorCode.INVALID_STATE, `start() while ${this.state}`);
    this.state = 'starting';
    const o = this.options;
    let firstSeq = 1;
    if (o.spoolDir !== undefined) {
      const { spool, leftovers } = await Spool.open(o.spoolDir, o.spoolMaxBytes, o.log, {
        fsync: o.spoolFsync,
      });
      this.spool = spool;
      this.buffer.attachSpool(spool, leftovers);
      // LINK.md: no two unacknowledged batches share a seq, whatever their incarnation.
      for (const f of leftovers) firstSeq = Math.max(firstSeq, f.seq + 1);
      if (leftovers.length > 0) {
        o.log.info(
          { batches: leftovers.length, bytes: spool.bytes, firstSeq },
          'spool: re-sending leftover batches first',
        );
      }
    }
    const batcher = new Batcher({
      incarnation: o.incarnation,
      sampleRate: this.sampler.sampleRate,
      maxRecords: o.batchRecords,
      maxBytes: o.batchBytes,
      lingerMs: o.batchLingerMs,
      firstSeq,
      frameLimit: this.client,
      alloc: (size) => this.framePool.take(size),
      onSeal: (frame, seq, records) => {
        this.counters.batchesSealed++;
        this.buffer.add(frame, seq, o.incarnation, records, !this.fileMode);
      },
    });
    this.batcher = batcher;
    this.client.start();
    let bound: ListenResult = {};
    if (o.dnstapSocket !== undefined || o.dnstapTcp !== undefined) {
      this.server = new FrameStreamServer({
        unixPath: o.dnstapSocket,
        tcp: o.dnstapTcp,
        ...o.dnstapInput,
        maxDataFrameSize: o.maxFrameSize,
        log: o.log,
        sink: {
          onFrame: (buf, start, end) => this.record(buf, start, end, true),
          // Runs only when nothing is decided per record (no sampling, rate limit or masking:
          // the defaults); otherwise the decoder hands every frame to record() on its own.
          ...(this.sampler.n === 1 && this.bucket === null && this.edgeMask === null
            ? { onFrames: (buf, start, end, frames) => this.recordRun(batcher, buf, start, end, frames) }
            : {}),
        },
      });
      bound = await this.server.listen();
    }
    this.watchSecrets();
    this.state = 'running';
    o.log.info({ id: o.id, incarnation: o.incarnation, enrichers: o.enrichers, ...bound }, 'agent started');
    return bound;
  }

  /**
   * --input-file: replays the capture (pausing while the buffer is full), then waits until
   * every batch is acknowledged. False when inputTimeoutMs ran out first or stop() came.
   */
  async replay(): Promise<boolean> {
    const o = this.options;
    if (o.inputFile === undefined || this.state !== 'running') {
      throw new AgentError(AgentErrorCode.INVALID_STATE, 'replay() needs inputFile and a started agent');
    }
    const target: ReplayTarget = {
      onData: (buf, start, end) => this.record(buf, start, end, false),
      onOversize: () => this.drop('oversize', 1),
      flush: () => this.batcher?.flush(),
      full: () => this.buffer.full,
      allAcked: () => this.buffer.allAcked(),
      isStopping: () => this.isStopping,
      waitUntil: (cond, ms) => this.waitUntil(cond, ms),
    };
    return replayFile(target, {
      file: o.inputFile,
      maxFrameSize: o.maxFrameSize,
      inputTimeoutMs: o.inputTimeoutMs,
      bucket: this.bucket,
      log: o.log,
    });
  }

  get isStopping(): boolean {
    return this.state === 'stopping' || this.state === 'stopped';
  }

  /** /readyz: see agent/README.md for why an enricher outage does not make us unready. */
  readiness(): Readiness {
    if (this.state === 'running') return { ready: true, reasons: [] };
    return {
      ready: false,
      reasons: [this.state === 'stopping' || this.state === 'stopped' ? 'stopping' : 'starting'],
    };
  }

  /**
   * SIGTERM: stop the inputs (producers are let go, in-flight data is read), seal the open
   * batch, wait up to drainTimeoutMs for acks, close the link, spool what is left (or count
   * it lost, loudly).
   */
  stop(): Promise<StopSummary> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  /** Resolves when cond() holds or after ms (0 = never gives up); true if cond() held. */
  async waitUntil(cond: () => boolean, ms: number): Promise<boolean> {
    let expired = false;
    const expire = () => {
      expired = true;
      this.buffer.wake();
    };
    const timer = ms > 0 ? setTimeout(expire, ms) : null;
    await this.buffer.waitFor(() => expired || cond());
    if (timer !== null) clearTimeout(timer);
    return cond();
  }

  private async doStop(): Promise<StopSummary> {
    const o = this.options;
    this.state = 'stopping';
    for (const w of this.secrets.splice(0)) w.stop();
    this.buffer.wake(); // a replay waiting for room gives up
    await this.server?.close(INPUT_CLOSE_GRACE_MS);
    this.batcher?.flush();
    this.batcher?.close();
    const drained = await this.waitUntil(
      () => (this.fileMode ? this.buffer.allAcked() : this.buffer.memoryIdle()),
      o.drainTimeoutMs,
    );
    await this.client.close();
    const [spooled, lost] = await this.buffer.spoolRest();
    this.state = 'stopped';
    const fields = {
      drained,
      spooled,
      lost,
      acked: this.client.stats.recordsAcked,
      resent: this.client.stats.batchesResent,
      dropped: this.counters.dropped,
    };
    if (lost > 0) o.log.error(fields, `agent stopped: ${lost} records were never acknowledged and are LOST`);
    else o.log.info(fields, 'agent stopped');
    return { spooled, lost };
  }

  /**
   * Rotated Secrets without a restart (common/secret-files.ts): the token and the link's TLS
   * material are used by new link connections, the dnstap input's by new producer connections;
   * open connections keep theirs. A refused update (expired, key mismatch) keeps the current one.
   */
  private watchSecrets(): void {
    const o = this.options;
    const f = o.secretFiles ?? {};
    const watch = <T>(w: Omit<ConstructorParameters<typeof SecretWatch<T>>[0], 'log' | 'intervalMs'>) => {
      const watcher = new SecretWatch<T>({ ...w, log: o.log, intervalMs: o.secretReloadMs });
      this.secrets.push(watcher as SecretWatch<unknown>);
      watcher.start();
    };
    const read = (paths: string[]) => paths.map((p) => readOrEmpty(p));
    if (f.authToken !== undefined) {
      const path = f.authToken;
      watch<Buffer>({
        id: 'link_token',
        what: 'link auth token',
        paths: [path],
        initial: read([path]),
        load: ([b]) => tokenFromBytes(b!, path),
        apply: (token) => this.client.setAuthToken(token),
      });
    }
    const t = f.tls;
    if (t !== undefined && (t.ca !== undefined || t.cert !== undefined)) {
      const names = (['ca', 'cert', 'key'] as const).filter((k) => t[k] !== undefined);
      const paths = names.map((k) => t[k]!);
      watch<TlsMaterial>({
        id: 'link_tls',
        what: 'link TLS client certificate',
        paths,
        initial: read(paths),
        load: (c) => {
          const m: TlsMaterial = {};
          names.forEach((k, i) => {
            m[k] = c[i];
          });
          checkTlsMaterial(m, t);
          return m;
        },
        apply: (m) => this.client.setTls(m),
      });
    }
    const d = f.dnstapTls;
    if (d !== undefined && o.dnstapInput?.tls) {
      const input = o.dnstapInput;
      const paths = d.ca === undefined ? [d.cert, d.key] : [d.cert, d.key, d.ca];
      watch<TlsMaterial>({
        id: 'dnstap_tls',
        what: 'dnstap TLS certificate',
        paths,
        initial: read(paths),
        load: (c) => {
          const m: TlsMaterial = { cert: c[0], key: c[1], ...(c[2] ? { ca: c[2] } : {}) };
          checkTlsMaterial(m, d);
          return m;
        },
        apply: (m) => {
          input.tls = { cert: m.cert!, key: m.key!, ...(m.ca ? { ca: m.ca } : {}) };
          this.server?.setTls(input.tls);
        },
      });
    }
  }

  /** Hot path: one call per dnstap data frame. */
  private record(buf: Buffer, start: number, end: number, live: boolean): void {
    const c = this.counters;
    c.recordsIn++;
    c.bytesIn += end - start;
    if (!this.sampler.keep()) {
      c.sampledOut++;
      return;
    }
    if (this.bucket !== null) {
      if (!live) this.bucket.takeDebt();
      else if (!this.bucket.take()) {
        c.dropped.rate_limit++;
        return;
      }
    }
    // Masked before the batch copy: nothing after this point sees the client's full address.
    if (this.edgeMask !== null && !this.edgeMask.apply(buf, start, end)) {
      c.dropped.undecodable++;
      return;
    }
    if (this.batcher === null || !this.batcher.add(buf, start, end)) c.dropped.oversize++;
  }

  /**
   * Hot path: a run of live data frames in Frame Streams framing (a read's complete frames),
   * copied into the batch at once. Offered to the input only when nothing is decided per
   * record (start()).
   */
  private recordRun(batcher: Batcher, buf: Buffer, start: number, end: number, frames: number): void {
    const c = this.counters;
    c.recordsIn += frames;
    c.bytesIn += end - start - 4 * frames;
    const oversize = batcher.addFramed(buf, start, end);
    if (oversize > 0) c.dropped.oversize += oversize;
  }

  private drop(reason: DropReason, records: number): void {
    this.counters.dropped[reason] += records;
  }
}
