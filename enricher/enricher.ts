// The enricher process (README: Commands, Output, Operations), composed in start order: ops endpoint (so probes
// answer while recovery runs) -> recovery of partial chunks left by a crashed predecessor ->
// policy -> chunk writer -> pipeline -> link server -> optional --dnstap-listen. stop() is
// the SIGTERM drain: readiness false at once, Drain to every agent, in-flight batches still
// written and acknowledged, then chunks committed and everything closed.

import { access, constants } from 'node:fs/promises';
import { FrameStreamServer } from '../common/framestream-server';
import type { Logger } from '../common/log';
import { OpsServer, type Readiness } from '../common/ops-server';
import type { SecretWatch } from '../common/secret-files';
import { AckGate, AggregateService, maskedNetworkText, replayInto } from './aggregates/service';
import {
  DEFAULT_DRAIN_TIMEOUT_MS,
  DEFAULT_OUTPUT_RETRY_MS,
  type EnricherAddresses,
  type EnricherOptions,
} from './enricher-options';
import { EnricherMetrics } from './metrics';
import { ioError, OutputError } from './output/errors';
import {
  azureContainer,
  CHUNK_DEFAULTS,
  type ChunkWriter,
  checkChunkWriterOptions,
  checkPartitionOptions,
  createOutputWriter,
  DEFAULT_STALE_AFTER_MS,
  type PartitionedWriter,
  parseOutputUrl,
  probeOutput,
  recoverAzure,
  recoverPartials,
  s3Client,
  s3Publisher,
} from './output/index';
import { RecordPipeline } from './pipeline/pipeline';
import { PolicyPoller } from './policy/poller';
import { watchSecrets } from './secret-watches';
import { DnstapInput, LinkServer } from './server/index';
import {
  DEFAULT_OUTPUT_START_TIMEOUT_MS,
  EnricherStartError,
  prepareOutputDir,
  withDeadline,
} from './startup';

export {
  DEFAULT_DRAIN_TIMEOUT_MS,
  DEFAULT_OUTPUT_RETRY_MS,
  type EnricherAddresses,
  type EnricherOptions,
  type HostPort,
  type SecretFilePaths,
  type TlsFilePaths,
} from './enricher-options';

/** owner.lock refresh: well under recovery's 60 s staleness threshold. */
const HEARTBEAT_MS = 5_000;
const WRITABLE_PROBE_MS = 5_000;
const DNSTAP_CLOSE_GRACE_MS = 2_000;

export class Enricher {
  readonly metrics: EnricherMetrics;
  state: 'new' | 'starting' | 'running' | 'draining' | 'stopped' = 'new';
  link: LinkServer | null = null;
  writer: ChunkWriter | PartitionedWriter | null = null;
  pipeline: RecordPipeline | null = null;
  aggregates: AggregateService | null = null;
  poller: PolicyPoller | null = null;
  private dnstap: { server: FrameStreamServer; input: DnstapInput } | null = null;
  private ops: OpsServer | null = null;
  private outputWritable = true;
  /** The output failure that closed the link, while the output is being retried. */
  private suspended: { err: OutputError; since: number } | null = null;
  /** Output failures by OutputError code (metric). */
  readonly outputFailures = new Map<string, number>();
  private retryTimer: NodeJS.Timeout | null = null;
  private suspending: Promise<void> | null = null;
  private linkPort: number | undefined;
  private dnstapPort: number | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  /** Secret files re-read while running (token, certificates, pseudonym key). */
  readonly secrets: SecretWatch<unknown>[] = [];
  private starting: Promise<EnricherAddresses> | null = null;
  private stopping: Promise<number> | null = null;
  private failure: Error | null = null;
  private readonly log: Logger;
  private resolveStopped: (code: number) => void = () => undefined;
  /** Settles with the exit code once the enricher has stopped, whatever stopped it. */
  readonly stopped = new Promise<number>((resolve) => {
    this.resolveStopped = resolve;
  });

  /** az://: no local directory to prepare, probe or check. */
  private get objectOnly(): boolean {
    return (this.o.output.outputUrl ?? '').startsWith('az://');
  }

  constructor(private readonly o: EnricherOptions) {
    this.log = o.log;
    this.metrics = new EnricherMetrics({
      pipeline: () => this.pipeline?.counters ?? null,
      link: () => this.link?.stats ?? null,
      writer: () => this.writer?.stats() ?? null,
      partition: () => (this.writer !== null && 'partition' in this.writer ? this.writer.partition : null),
      dnstap: () =>
        this.dnstap ? { input: this.dnstap.input.stats, server: this.dnstap.server.stats } : null,
      policy: () => (this.poller ? { current: this.poller.current, stats: this.poller.stats } : null),
      ready: () => this.readiness().ready,
      output: () => ({ suspended: this.suspended !== null, failures: this.outputFailures }),
      draining: () => this.state === 'draining',
      secrets: () => this.secrets,
      aggregates: () => this.aggregates?.stats ?? null,
      id: o.id,
      overload: () => this.link?.overload ?? null,
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
      checkPartitionOptions(o.partition ?? {});
      const dir = o.output.outputDir;
      // az:// has no local directory; s3:// keeps its durable log in outputDir.
      if (!this.objectOnly)
        await withDeadline(
          `preparing the output directory ${dir}`,
          o.outputStartTimeoutMs ?? DEFAULT_OUTPUT_START_TIMEOUT_MS,
          () => prepareOutputDir(dir),
        );
      if (o.policy) {
        this.poller = new PolicyPoller({ ...o.policy, log: this.log });
        this.policyDeadline();
        await this.poller.start();
      }
      await this.openOutput(addresses);
      this.startTimers();
    } catch (err) {
      await this.teardown();
      this.state = 'stopped';
      throw err;
    }
    this.state = 'running';
    this.log.info({ ...addresses, id: o.id, incarnation: this.writer?.incarnation }, 'enricher ready');
    return addresses;
  }

  /**
   * Recovery of partial chunks, then writer -> pipeline -> link server -> dnstap input. Run
   * at start and again after an output failure, when the output works again.
   */
  private async openOutput(addresses: EnricherAddresses): Promise<void> {
    const o = this.o;
    const url = o.output.outputUrl ? parseOutputUrl(o.output.outputUrl) : null;
    if (url?.scheme === 'az') {
      const az = await recoverAzure(url, azureContainer(url), o.id, {
        staleAfterMs: o.output.staleAfterMs ?? DEFAULT_STALE_AFTER_MS,
      });
      if (az.committed.length + az.alreadyCommitted > 0 || az.live.length > 0) {
        this.log.info(
          { committed: az.committed.length, alreadyCommitted: az.alreadyCommitted, live: az.live.length },
          'recovered staged chunks',
        );
      }
    }
    const rec =
      url?.scheme === 'az'
        ? { recovered: 0, dropped: 0, liveDirs: [], published: [], unsupported: [] }
        : await recoverPartials(o.output.outputDir, o.id, {
            ...(o.output.staleAfterMs === undefined ? {} : { staleAfterMs: o.output.staleAfterMs }),
            ...(url?.scheme === 's3' ? { publish: s3Publisher(url, s3Client()) } : {}),
          });
    if (rec.recovered + rec.dropped > 0 || rec.liveDirs.length > 0) {
      this.log.info({ ...rec, published: rec.published.length }, 'recovered partial chunks');
    }
    if (rec.unsupported.length > 0) {
      this.log.warn(
        { files: rec.unsupported },
        'zstd partial chunks left for a Node.js with zstd to recover (this one has none)',
      );
    }
    const writer = createOutputWriter(
      {
        ...o.output,
        enricherId: o.id,
        onCommit: (c) => this.log.info({ path: c.path, rows: c.rows, bytes: c.bytes }, 'chunk committed'),
      },
      o.partition,
    );
    this.writer = writer;
    const poller = this.poller;
    const policy = () => poller?.current ?? null;
    const agg = o.aggregates ?? null;
    const pipeline = new RecordPipeline(agg?.rows === false ? null : writer, o.id, policy, o.rows);
    this.pipeline = pipeline;
    let aggregates: AggregateService | null = null;
    if (agg !== null) {
      // The journal replays through a pipeline of its own that writes no rows (they are durable already).
      const out = checkChunkWriterOptions({ ...o.output, enricherId: o.id });
      aggregates = new AggregateService({
        outputDir: out.outputDir,
        enricherId: o.id,
        key: agg.key,
        graceMs: agg.graceMs,
        compression: out.compression,
        gzipLevel: out.gzipLevel,
        zstdLevel: out.zstdLevel,
        journal: true,
        log: this.log,
        networkText: maskedNetworkText(o.rows),
      });
      pipeline.observer = aggregates.aggregator;
      const replay = new RecordPipeline(null, o.id, policy, o.rows);
      replay.observer = aggregates.aggregator;
      await aggregates.open((b, into) => {
        replay.observer = into;
        replayInto(replay, b);
      });
      this.aggregates = aggregates;
    }
    this.link = new LinkServer({
      ...o.link,
      ...o.listen,
      // After an output failure the link reopens on the port it had (o.listen.port may be 0).
      port: this.linkPort ?? o.listen.port,
      enricherId: o.id,
      pipeline,
      // With aggregates an ack also waits for the journal (durable counts, kill -9).
      output: aggregates === null ? writer : new AckGate(writer, aggregates),
      ...(aggregates === null ? {} : { onBatch: (b) => aggregates.onBatch(b) }),
      log: this.log,
      authToken: o.authToken ?? null,
      tls: o.tls ?? null,
      onAckLatency: (s) => this.metrics.ackLatency.observe(s),
    });
    addresses.link = (await this.link.listen()).port;
    this.linkPort = addresses.link;
    if (o.dnstapListen) {
      const input = new DnstapInput(`dnstap-${o.id}-${writer.incarnation}`, pipeline, writer);
      const server = new FrameStreamServer({
        tcp: { ...o.dnstapListen, port: this.dnstapPort ?? o.dnstapListen.port },
        ...o.dnstapInput,
        sink: input,
        log: this.log,
        maxDataFrameSize: o.maxDataFrameSize,
      });
      server.on('connection-closed', (conn) => input.forget(conn.id));
      this.dnstap = { server, input };
      addresses.dnstap = (await server.listen()).tcpPort;
      this.dnstapPort = addresses.dnstap;
    }
  }

  readiness(): Readiness {
    const reasons: string[] = [];
    if (this.state !== 'running') reasons.push(this.state === 'draining' ? 'draining' : this.state);
    if (this.o.policy && this.poller?.current == null) reasons.push('policy not loaded');
    if (!this.outputWritable) reasons.push('output directory not writable');
    if (this.failure !== null) reasons.push('output failed');
    if (this.suspended !== null) {
      const { err } = this.suspended;
      reasons.push(`output failed (${err.code}): ${err.message}; acknowledgements withheld, retrying`);
    }
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
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    await this.suspending;
    if (was === 'running' && this.failure === null && this.suspended === null) {
      await Promise.all([
        this.link?.drain(reason, drainMs),
        this.dnstap?.server.close(Math.min(DNSTAP_CLOSE_GRACE_MS, drainMs)),
      ]);
    }
    await this.teardown();
    this.state = 'stopped';
    const code = this.failure === null && this.suspended === null ? 0 : 1;
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
    for (const w of this.secrets.splice(0)) w.stop();
    this.poller?.stop();
    await Promise.all([this.link?.close(), this.dnstap?.server.close(0)]);
    try {
      await this.aggregates?.close();
    } catch (err) {
      this.fail(err as Error);
    }
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

  /**
   * An output failure with retries on: close the link (agents keep what was not acknowledged
   * and send it elsewhere or later), abandon the writer (its partial files stay for recovery)
   * and reopen everything once the output works again. Readiness is false meanwhile.
   */
  private suspend(err: unknown): void {
    const retryMs = this.o.outputRetryMs ?? DEFAULT_OUTPUT_RETRY_MS;
    if (retryMs === 0) {
      this.fail(err as Error);
      return;
    }
    if (this.suspended !== null || this.state !== 'running') return;
    const oerr = err instanceof OutputError ? err : ioError('write', this.o.output.outputDir, err);
    this.suspended = { err: oerr, since: Date.now() };
    this.outputFailures.set(oerr.code, (this.outputFailures.get(oerr.code) ?? 0) + 1);
    this.log.error(
      { err: oerr, code: oerr.code, retryMs },
      'output failed: acknowledgements withheld, link closed until the output works again',
    );
    this.suspending = this.closeOutput().then(() => {
      this.suspending = null;
      this.scheduleRetry(retryMs);
    });
    this.suspending.catch(() => undefined);
  }

  private async closeOutput(): Promise<void> {
    await Promise.all([this.link?.close(), this.dnstap?.server.close(0)]);
    // Published again after the retry, from the journal.
    this.aggregates?.abandon();
    this.aggregates = null;
    try {
      await this.writer?.close();
    } catch {
      // The failure we are suspended for, or the next one: the partial files stay for recovery.
    }
    this.link = null;
    this.dnstap = null;
    this.pipeline = null;
    this.writer = null;
  }

  private scheduleRetry(retryMs: number): void {
    if (this.state !== 'running') return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      // stop() waits for this: a reopen must not outlive the teardown.
      this.suspending = this.retryOutput(retryMs).finally(() => {
        this.suspending = null;
      });
    }, retryMs);
  }

  private async retryOutput(retryMs: number): Promise<void> {
    const suspended = this.suspended;
    if (suspended === null || this.state !== 'running') return;
    try {
      // Room for a few blocks, so a disk with a little space freed does not reopen and refill at once.
      if (!this.objectOnly)
        await probeOutput(
          this.o.output.outputDir,
          4 * (this.o.output.blockBytes ?? CHUNK_DEFAULTS.blockBytes),
        );
      await this.openOutput({ link: 0 });
    } catch (err) {
      await this.closeOutput();
      const code = (err as { code?: string }).code;
      this.log.warn({ err: (err as Error).message, code, retryMs }, 'output still failing');
      this.scheduleRetry(retryMs);
      return;
    }
    this.suspended = null;
    this.log.info(
      { downMs: Date.now() - suspended.since, code: suspended.err.code },
      'output works again: link reopened',
    );
  }

  private startTimers(): void {
    const every = (ms: number, fn: () => void) => {
      const t = setInterval(fn, ms);
      t.unref();
      this.timers.push(t);
    };
    every(1000, () => {
      const writer = this.writer;
      if (writer === null) return;
      writer.tick();
      const s = writer.stats();
      if (s.failed && this.failure === null) {
        // The sink's sticky error: flush() rejects it; surface it here for the log and readiness.
        writer.flush().catch((err: Error) => this.suspend(err));
      }
    });
    every(HEARTBEAT_MS, () => {
      this.writer
        ?.heartbeat()
        .catch((err: Error) => this.log.warn({ err: err.message }, 'owner lock refresh failed'));
    });
    this.secrets.push(
      ...watchSecrets(this.o, { link: () => this.link, dnstap: () => this.dnstap?.server ?? null }, this.log),
    );
    every(this.o.writableProbeMs ?? WRITABLE_PROBE_MS, () => {
      if (this.objectOnly) return;
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
