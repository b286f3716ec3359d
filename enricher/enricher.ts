// The enricher process (README: Commands, Output, Operations), composed in start order: ops endpoint (so probes
// answer while recovery runs) -> recovery of partial chunks left by a crashed predecessor ->
// policy -> chunk writer -> pipeline -> link server -> optional --dnstap-listen. stop() is
// the SIGTERM drain: readiness false at once, Drain to every agent, in-flight batches still
// written and acknowledged, then chunks committed and everything closed.

import { access, constants } from 'node:fs/promises';
import type { DnstapListenerTuning } from '../common/framestream-listen';
import { FrameStreamServer } from '../common/framestream-server';
import type { Logger } from '../common/log';
import { OpsServer, type Readiness } from '../common/ops-server';
import { EnricherMetrics } from './metrics';
import {
  ChunkWriter,
  type ChunkWriterOptions,
  checkChunkWriterOptions,
  recoverPartials,
} from './output/index';
import { RecordPipeline, type RowOptions } from './pipeline/pipeline';
import { KEY_RELOAD_INTERVAL_MS } from './pipeline/pseudonym';
import { PolicyPoller, type PolicyPollerOptions } from './policy/poller';
import { DnstapInput, LinkServer, type LinkServerOptions, type LinkTlsOptions } from './server/index';
import {
  DEFAULT_OUTPUT_START_TIMEOUT_MS,
  EnricherStartError,
  prepareOutputDir,
  withDeadline,
} from './startup';

export interface HostPort {
  host: string;
  port: number;
}

type LinkTuning = Partial<
  Pick<
    LinkServerOptions,
    | 'maxConnections'
    | 'maxHandshaking'
    | 'handshakeTimeoutMs'
    | 'keepaliveIntervalMs'
    | 'maxInFlightBatches'
    | 'maxFrameBytes'
    | 'maxUnackedBytes'
  >
>;

export interface EnricherOptions {
  /** Enricher id: every row's enricher_id, chunk names, the Welcome. */
  id: string;
  output: Omit<ChunkWriterOptions, 'onCommit' | 'enricherId'>;
  listen: HostPort;
  dnstapListen?: HostPort | null;
  /** TLS, allow-list, budgets and handshake deadline of --dnstap-listen. */
  dnstapInput?: DnstapListenerTuning;
  /** null: no ops endpoint (library use). */
  metricsListen?: HostPort | null;
  link?: LinkTuning;
  authToken?: Buffer | null;
  tls?: LinkTlsOptions | null;
  /** url or file (not both); readiness waits for the first load. */
  policy?: Omit<PolicyPollerOptions, 'log'> | null;
  /** Privacy and column selection (--mask-client-*, --drop-ecs, --pseudonymize-clients, --columns). */
  rows?: RowOptions;
  /** How often the pseudonym key file is re-read (default KEY_RELOAD_INTERVAL_MS). */
  keyReloadMs?: number;
  maxDataFrameSize?: number;
  /** How long agents get to finish their in-flight batches on stop(). */
  drainTimeoutMs?: number;
  /** Deadline of the start steps on the output directory. Default 30 s. */
  outputStartTimeoutMs?: number;
  /** --policy-url only: stop with exit 1 when no policy loaded this long after start; 0/absent = wait. */
  policyStartTimeoutMs?: number;
  /** How often the output directory is probed for writability (readiness). */
  writableProbeMs?: number;
  log: Logger;
}

export const DEFAULT_DRAIN_TIMEOUT_MS = 20_000;
/** owner.lock refresh: well under recovery's 60 s staleness threshold. */
const HEARTBEAT_MS = 5_000;
const WRITABLE_PROBE_MS = 5_000;
const DNSTAP_CLOSE_GRACE_MS = 2_000;

export interface EnricherAddresses {
  link: number;
  dnstap?: number;
  metrics?: number;
}

export class Enricher {
  readonly metrics: EnricherMetrics;
  state: 'new' | 'starting' | 'running' | 'draining' | 'stopped' = 'new';
  link: LinkServer | null = null;
  writer: ChunkWriter | null = null;
  pipeline: RecordPipeline | null = null;
  poller: PolicyPoller | null = null;
  private dnstap: { server: FrameStreamServer; input: DnstapInput } | null = null;
  private ops: OpsServer | null = null;
  private outputWritable = true;
  private readonly timers: NodeJS.Timeout[] = [];
  private starting: Promise<EnricherAddresses> | null = null;
  private stopping: Promise<number> | null = null;
  private failure: Error | null = null;
  private readonly log: Logger;
  private resolveStopped: (code: number) => void = () => undefined;
  /** Settles with the exit code once the enricher has stopped, whatever stopped it. */
  readonly stopped = new Promise<number>((resolve) => {
    this.resolveStopped = resolve;
  });

  constructor(private readonly o: EnricherOptions) {
    this.log = o.log;
    this.metrics = new EnricherMetrics({
      pipeline: () => this.pipeline?.counters ?? null,
      link: () => this.link?.stats ?? null,
      writer: () => this.writer?.stats() ?? null,
      dnstap: () =>
        this.dnstap ? { input: this.dnstap.input.stats, server: this.dnstap.server.stats } : null,
      policy: () => (this.poller ? { current: this.poller.current, stats: this.poller.stats } : null),
      ready: () => this.readiness().ready,
      draining: () => this.state === 'draining',
      id: o.id,
    });
  }

  /** Starts everything; on failure closes what was started and rethrows. */
  start(): Promise<EnricherAddresses> {
    this.starting ??= this.startAll();
    return this.starting;
  }

  private async startAll(): Promise<EnricherAddresses> {
    this.state = 'starting';
    const o = this.o;
    const addresses: EnricherAddresses = { link: 0 };
    try {
      if (o.metricsListen) {
        this.ops = new OpsServer({
          ...o.metricsListen,
          registry: this.metrics.registry,
          readiness: () => this.readiness(),
        });
        addresses.metrics = (await this.ops.listen()).port;
      }
      // Bad writer options are configuration errors (exit 2): say so before touching the disk.
      checkChunkWriterOptions({ ...o.output, enricherId: o.id });
      const dir = o.output.outputDir;
      const rec = await withDeadline(
        `preparing the output directory ${dir}`,
        o.outputStartTimeoutMs ?? DEFAULT_OUTPUT_START_TIMEOUT_MS,
        async () => {
          await prepareOutputDir(dir);
          return recoverPartials(dir, o.id);
        },
      );
      if (rec.recovered + rec.dropped > 0 || rec.liveDirs.length > 0) {
        this.log.info({ ...rec, published: rec.published.length }, 'recovered partial chunks');
      }
      if (rec.unsupported.length > 0) {
        this.log.warn(
          { files: rec.unsupported },
          'zstd partial chunks left for a Node.js with zstd to recover (this one has none)',
        );
      }
      if (o.policy) {
        this.poller = new PolicyPoller({ ...o.policy, log: this.log });
        this.policyDeadline();
        await this.poller.start();
      }
      const writer = new ChunkWriter({
        ...o.output,
        enricherId: o.id,
        onCommit: (c) => this.log.info({ path: c.path, rows: c.rows, bytes: c.bytes }, 'chunk committed'),
      });
      this.writer = writer;
      const poller = this.poller;
      const pipeline = new RecordPipeline(writer, o.id, () => poller?.current ?? null, o.rows);
      this.pipeline = pipeline;
      this.link = new LinkServer({
        ...o.link,
        ...o.listen,
        enricherId: o.id,
        pipeline,
        output: writer,
        log: this.log,
        authToken: o.authToken ?? null,
        tls: o.tls ?? null,
        onAckLatency: (s) => this.metrics.ackLatency.observe(s),
      });
      addresses.link = (await this.link.listen()).port;
      if (o.dnstapListen) {
        const input = new DnstapInput(`dnstap-${o.id}-${writer.incarnation}`, pipeline, writer);
        const server = new FrameStreamServer({
          tcp: o.dnstapListen,
          ...o.dnstapInput,
          sink: input,
          log: this.log,
          maxDataFrameSize: o.maxDataFrameSize,
        });
        server.on('connection-closed', (conn) => input.forget(conn.id));
        this.dnstap = { server, input };
        addresses.dnstap = (await server.listen()).tcpPort;
      }
      this.startTimers(writer);
    } catch (err) {
      await this.teardown();
      this.state = 'stopped';
      throw err;
    }
    this.state = 'running';
    this.log.info({ ...addresses, id: o.id, incarnation: this.writer.incarnation }, 'enricher ready');
    return addresses;
  }

  readiness(): Readiness {
    const reasons: string[] = [];
    if (this.state !== 'running') reasons.push(this.state === 'draining' ? 'draining' : this.state);
    if (this.o.policy && this.poller?.current == null) reasons.push('policy not loaded');
    if (!this.outputWritable) reasons.push('output directory not writable');
    if (this.failure !== null) reasons.push('output failed');
    return { ready: reasons.length === 0, reasons };
  }

  /**
   * Drain and stop (SIGTERM). Resolves with the exit code: 0 when every chunk was committed,
   * 1 after an output failure. Idempotent.
   */
  stop(reason = 'shutdown'): Promise<number> {
    this.stopping ??= this.drainAndStop(reason);
    return this.stopping;
  }

  /** The error that stopped the enricher, if any. */
  get error(): Error | null {
    return this.failure;
  }

  private async drainAndStop(reason: string): Promise<number> {
    // A signal during start: let start finish (or fail and clean up) first.
    await this.starting?.catch(() => undefined);
    const was = this.state;
    this.state = 'draining';
    const drainMs = this.o.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS;
    this.log.info({ reason, drainTimeoutMs: drainMs }, 'enricher draining');
    if (was === 'running' && this.failure === null) {
      await Promise.all([
        this.link?.drain(reason, drainMs),
        this.dnstap?.server.close(Math.min(DNSTAP_CLOSE_GRACE_MS, drainMs)),
      ]);
    }
    await this.teardown();
    this.state = 'stopped';
    const code = this.failure === null ? 0 : 1;
    const w = this.writer?.stats();
    this.log.info(
      { code, chunks: w?.chunksCommitted, rows: w?.rowsCommitted, batches: this.link?.stats.batchesAcked },
      'enricher stopped',
    );
    this.resolveStopped(code);
    return code;
  }

  /** Closes in dependency order: inputs, then the writer (commits the open chunk), then ops. */
  private async teardown(): Promise<void> {
    for (const t of this.timers.splice(0)) clearInterval(t);
    this.poller?.stop();
    await Promise.all([this.link?.close(), this.dnstap?.server.close(0)]);
    if (this.writer !== null) {
      try {
        await this.writer.close();
      } catch (err) {
        this.fail(err as Error);
      }
    }
    await this.ops?.close();
  }

  /** --policy-start-timeout: a policy URL that never yields a policy ends the process (exit 1). */
  private policyDeadline(): void {
    const ms = this.o.policyStartTimeoutMs ?? 0;
    const url = this.o.policy?.url;
    if (ms <= 0 || url === undefined) return;
    const t = setTimeout(() => {
      const poller = this.poller;
      if (poller === null || poller.current !== null || this.stopping !== null) return;
      const failures = Object.fromEntries(poller.stats.failures);
      const err = new EnricherStartError(
        'ENRICHER_POLICY_START_TIMEOUT',
        `--policy-url ${url}: no policy loaded within ${ms / 1000} s (failures: ${JSON.stringify(failures)})`,
      );
      this.failure ??= err;
      this.log.error({ err, code: err.code, url, failures }, 'policy never loaded; stopping');
      void this.stop('policy never loaded');
    }, ms);
    t.unref();
    this.timers.push(t);
  }

  private fail(err: Error): void {
    if (this.failure !== null) return;
    this.failure = err;
    this.log.error({ err, code: (err as { code?: string }).code }, 'output failed; stopping');
    void this.stop('output failed');
  }

  private startTimers(writer: ChunkWriter): void {
    const every = (ms: number, fn: () => void) => {
      const t = setInterval(fn, ms);
      t.unref();
      this.timers.push(t);
    };
    every(1000, () => {
      writer.tick();
      const s = writer.stats();
      if (s.failed && this.failure === null) {
        // The sink's sticky error: flush() rejects it; surface it here for the log and exit code.
        writer.flush().catch((err: Error) => this.fail(err));
      }
    });
    every(HEARTBEAT_MS, () => {
      writer
        .heartbeat()
        .catch((err: Error) => this.log.warn({ err: err.message }, 'owner lock refresh failed'));
    });
    const pseudo = this.o.rows?.pseudonymizer;
    if (pseudo?.path) {
      // The kubelet swaps a Secret's `..data` symlink; re-reading the path sees the new key.
      every(this.o.keyReloadMs ?? KEY_RELOAD_INTERVAL_MS, () => {
        try {
          if (pseudo.reload()) this.log.info({ keyId: pseudo.keyId.toString() }, 'pseudonym key changed');
        } catch (err) {
          this.log.warn(
            { err: (err as Error).message },
            'pseudonym key reload failed; keeping the current key',
          );
        }
      });
    }
    every(this.o.writableProbeMs ?? WRITABLE_PROBE_MS, () => {
      access(this.o.output.outputDir, constants.W_OK).then(
        () => {
          this.outputWritable = true;
        },
        (err: Error) => {
          if (this.outputWritable) this.log.error({ err: err.message }, 'output directory not writable');
          this.outputWritable = false;
        },
      );
    });
  }
}
