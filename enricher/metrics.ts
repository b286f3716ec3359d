// Prometheus metrics of the enricher (README "Operations"), all named snowtap_enricher_*. The hot paths
// only bump plain counters (pipeline, link server, writer, dnstap input, policy poller); the
// metrics here read them in collect callbacks at scrape time. The one exception is the ack
// latency histogram, observed once per acknowledged batch, never per record.

import { performance } from 'node:perf_hooks';
import type { FrameStreamServerStats } from '../common/framestream-server';
import { byLabel, type Labels, one, type Samples, scrapedCounter, scrapedGauge } from '../common/metrics';
import { createRegistry } from '../common/ops-server';
import { Histogram, type Registry } from '../common/prom';
import { type SecretWatch, secretCounts } from '../common/secret-files';
import type { AggregateStats } from './aggregates/service';
import type { ChunkWriterStats, PartitionStats } from './output/index';
import type { PipelineCounters } from './pipeline/pipeline';
import type { Policy } from './policy/index';
import type { PolicyPollerStats } from './policy/poller';
import type { DnstapInputStats, LinkServerStats, OverloadController } from './server/index';

/** Where the numbers come from; getters return null for parts not configured (yet). */
export interface EnricherMetricSources {
  pipeline: () => PipelineCounters | null;
  link: () => LinkServerStats | null;
  writer: () => ChunkWriterStats | null;
  /** --partition-by tenant: lanes, evictions, throttling; null when not partitioned. */
  partition?: () => PartitionStats | null;
  dnstap: () => { input: DnstapInputStats; server: FrameStreamServerStats } | null;
  policy: () => { current: Policy | null; stats: PolicyPollerStats } | null;
  ready: () => boolean;
  /** Output failures by code, and whether acknowledgements are withheld because of one now. */
  output?: () => { suspended: boolean; failures: Map<string, number> };
  /** Secret files re-read while running (common/secret-files.ts). */
  secrets?: () => readonly SecretWatch<unknown>[];
  draining: () => boolean;
  /** Hourly aggregates (--aggregates hourly); absent/null when off. */
  aggregates?: () => AggregateStats | null;
  /** The enricher id (the pod name in Kubernetes): the info metric's label, for scoping queries. */
  id?: string;
  /** Drain on overload (the link server's controller). */
  overload?: () => OverloadController | null;
}

export const ACK_LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

const P = 'snowtap_enricher_';

const counter = (reg: Registry, name: string, help: string, labelNames: string[], read: () => Samples) =>
  scrapedCounter(reg, P + name, help, labelNames, read);
const gauge = (reg: Registry, name: string, help: string, labelNames: string[], read: () => Samples) =>
  scrapedGauge(reg, P + name, help, labelNames, read);

export class EnricherMetrics {
  readonly registry: Registry;
  readonly ackLatency: Histogram;

  constructor(s: EnricherMetricSources, registry: Registry = createRegistry('enricher')) {
    const r = registry;
    this.registry = r;
    const link = s.link;
    const dn = s.dnstap;
    const w = s.writer;
    const pol = s.policy;
    const pc = s.pipeline;
    const noErrors = new Map<string, number>();
    // The id is a label the process exports itself, so autoscaling queries can select this
    // release's enrichers under any scrape path (ServiceMonitor, PodMonitor, annotations).
    gauge(r, 'info', 'Enricher identity: id (the pod name in Kubernetes; rows carry it)', ['id'], () =>
      s.id === undefined ? [] : [[{ id: s.id }, 1]],
    );
    // Busy time of the main event loop (node:perf_hooks ELU), as a counter: rate() over any
    // window is the utilisation, whatever the scrape cadence or the number of scrapers.
    counter(
      r,
      'event_loop_busy_seconds_total',
      'Time the main event loop spent running code (rate() = event-loop utilisation, 1 = saturated)',
      [],
      () => one(performance.eventLoopUtilization().active / 1000),
    );
    counter(
      r,
      'records_received_total',
      'dnstap records received, by input (link = from agents)',
      ['input'],
      () => [
        ...(link() ? [[{ input: 'link' }, link()!.recordsIn] as [Labels, number]] : []),
        ...(dn() ? [[{ input: 'dnstap' }, dn()!.input.frames] as [Labels, number]] : []),
      ],
    );
    counter(r, 'received_bytes_total', 'Bytes read from input sockets, by input', ['input'], () => [
      ...(link() ? [[{ input: 'link' }, link()!.bytesIn] as [Labels, number]] : []),
      ...(dn() ? [[{ input: 'dnstap' }, dn()!.server.bytesIn] as [Labels, number]] : []),
    ]);
    counter(r, 'rows_written_total', 'CSV rows handed to the chunk writer', [], () => one(pc()?.rows));
    counter(r, 'row_bytes_total', 'Uncompressed CSV bytes handed to the chunk writer', [], () =>
      one(pc()?.rowBytes),
    );
    counter(r, 'output_written_bytes_total', 'Bytes written to chunk files (after --compression)', [], () =>
      one(w()?.bytesWritten),
    );
    counter(
      r,
      'dropped_records_total',
      'Records not written, by stage and reason',
      ['stage', 'reason'],
      () => {
        const d = dn();
        const c = pc();
        return [
          ...byLabel(c?.dnstapErrors, 'reason', { stage: 'decode' }),
          ...(c ? ([[{ stage: 'decode', reason: 'no_message' }, c.noMessage]] as [Labels, number][]) : []),
          ...(d
            ? ([
                [{ stage: 'dnstap_input', reason: 'output_backpressure' }, d.input.droppedBackpressure],
                [{ stage: 'dnstap_input', reason: 'oversize' }, d.server.oversizeFrames],
                [{ stage: 'dnstap_input', reason: 'sink_error' }, d.server.sinkErrors],
              ] as [Labels, number][])
            : []),
        ];
      },
    );
    counter(
      r,
      'decode_errors_total',
      'Decode errors by kind (dnstap: record dropped; dns: row written without DNS fields)',
      ['kind', 'code'],
      () => [
        ...byLabel(pc()?.dnstapErrors ?? noErrors, 'code', { kind: 'dnstap' }),
        ...byLabel(pc()?.dnsErrors ?? noErrors, 'code', { kind: 'dns' }),
      ],
    );
    counter(
      r,
      'fields_out_of_range_total',
      'Typed CSV fields written empty (NULL) because the value lies outside the column type, by column',
      ['column'],
      () => {
        const o = pc()?.outOfRange;
        return o === undefined
          ? []
          : Object.entries(o).map(([column, v]) => [{ column }, v] as [Labels, number]);
      },
    );
    counter(
      r,
      'fields_truncated_total',
      'CSV fields cut to their bound (identity, answers, dnstap policy texts, query_zone), by column',
      ['column'],
      () => {
        const t = pc()?.truncated;
        return t === undefined
          ? []
          : Object.entries(t).map(([column, v]) => [{ column }, v] as [Labels, number]);
      },
    );
    counter(
      r,
      'dns_responses_total',
      'DNS responses (*_RESPONSE records with a DNS header) by rcode (fixed label set, other rcodes as "other")',
      ['rcode'],
      () => pc()?.traffic.responseSeries() ?? [],
    );
    counter(
      r,
      'dns_queries_total',
      'DNS queries (*_QUERY records with a question) by dnstap message type and qtype class (fixed label sets)',
      ['message_type', 'qtype'],
      () => pc()?.traffic.querySeries() ?? [],
    );
    counter(r, 'link_batches_received_total', 'Batches received from agents', [], () =>
      one(link()?.batchesReceived),
    );
    counter(r, 'link_batches_acked_total', 'Batches acknowledged (rows durable)', [], () =>
      one(link()?.batchesAcked),
    );
    counter(r, 'link_sent_bytes_total', 'Bytes sent to agents (acks, control)', [], () =>
      one(link()?.bytesOut),
    );
    counter(r, 'link_connections_accepted_total', 'Link connections accepted (TCP/TLS)', [], () =>
      one(link()?.connectionsAccepted),
    );
    counter(r, 'link_handshakes_total', 'Link handshakes completed with Welcome', [], () =>
      one(link()?.handshakesCompleted),
    );
    counter(r, 'link_connections_rejected_total', 'Link connections refused, by reason', ['reason'], () =>
      byLabel(link()?.rejected, 'reason'),
    );
    counter(r, 'link_connections_closed_total', 'Link connections closed, by reason', ['reason'], () =>
      byLabel(link()?.closed, 'reason'),
    );
    counter(r, 'link_handshake_timeouts_total', 'Connections without a Hello before the deadline', [], () =>
      one(link()?.handshakeTimeouts),
    );
    counter(
      r,
      'link_keepalive_timeouts_total',
      'Connections closed after 3 silent keepalive intervals',
      [],
      () => one(link()?.keepaliveTimeouts),
    );
    counter(
      r,
      'link_protocol_errors_total',
      'Link protocol errors (connection closed), by code',
      ['code'],
      () => byLabel(link()?.protocolErrors, 'code'),
    );
    counter(
      r,
      'link_drains_sent_total',
      'Drain messages sent to agents, by reason (shutdown: SIGTERM; overload: drain on overload)',
      ['reason'],
      () => byLabel(link()?.drainsByReason, 'reason'),
    );
    const ov = () => s.overload?.() ?? null;
    gauge(
      r,
      'overload',
      '1 while the enricher counts as overloaded (event-loop utilisation above --overload-high for --overload-enter)',
      [],
      () => one(ov() ? (ov()!.state === 'overloaded' ? 1 : 0) : null),
    );
    gauge(
      r,
      'overload_utilisation',
      'What drain on overload measured over the last second: event-loop utilisation, or CPU used / --overload-cpu-limit when larger',
      [],
      () => one(ov()?.utilisation),
    );
    counter(r, 'overload_seconds_total', 'Time spent overloaded', [], () =>
      one(ov() ? ov()!.overloadedMs / 1000 : null),
    );
    counter(r, 'overload_episodes_total', 'Times the enricher became overloaded', [], () =>
      one(ov()?.episodes),
    );
    counter(r, 'link_pauses_total', 'Times a link connection stopped being read (backpressure)', [], () =>
      one(link()?.pauses),
    );
    gauge(r, 'link_connections', 'Open link connections', [], () => one(link()?.connectionsOpen));
    gauge(r, 'link_connections_paused', 'Link connections not read because of backpressure', [], () =>
      one(link()?.connectionsPaused),
    );
    this.ackLatency = new Histogram({
      name: P + 'link_ack_latency_seconds',
      help: 'Time from a batch arriving to its Ack being sent (includes the fsync)',
      buckets: ACK_LATENCY_BUCKETS,
      registers: [r],
    });
    gauge(r, 'dnstap_connections', 'Open --dnstap-listen connections', [], () =>
      one(dn()?.server.connectionsOpen),
    );
    counter(r, 'dnstap_connections_total', '--dnstap-listen connections accepted', [], () =>
      one(dn()?.server.connectionsTotal),
    );
    counter(
      r,
      'dnstap_connections_refused_total',
      '--dnstap-listen connections refused or cut before their handshake finished, by reason',
      ['reason'],
      () => byLabel(dn()?.server.refusedByReason, 'reason'),
    );
    this.policyMetrics(r, pol);
    counter(r, 'chunks_committed_total', 'Chunk files committed (published)', [], () =>
      one(w()?.chunksCommitted),
    );
    counter(r, 'rows_committed_total', 'Rows in committed chunk files', [], () => one(w()?.rowsCommitted));
    counter(r, 'committed_bytes_total', 'Uncompressed CSV bytes in committed chunk files', [], () =>
      one(w()?.bytesCommitted),
    );
    gauge(r, 'writer_pending_bytes', 'Sealed CSV bytes waiting for the disk', [], () =>
      one(w()?.queuedBytes),
    );
    gauge(r, 'writer_open_chunk_rows', 'Rows in the chunk being written', [], () => one(w()?.partialRows));
    gauge(r, 'writer_open_chunk_age_seconds', 'Age of the chunk being written', [], () =>
      one(w() ? w()!.openAgeMs / 1000 : null),
    );
    gauge(
      r,
      'oldest_uncommitted_row_age_seconds',
      'Age of the oldest row written but not yet in a committed chunk (0 when none): how long an acknowledged row can wait before Snowpipe can see it',
      [],
      () => one(w() ? w()!.oldestUncommittedAgeMs / 1000 : null),
    );
    const part = () => s.partition?.() ?? null;
    gauge(
      r,
      'tenant_lanes_open',
      'Tenant chunk lanes in use (--partition-by tenant; at most --max-open-tenants)',
      [],
      () => one(part()?.openTenants),
    );
    counter(
      r,
      'tenant_chunks_evicted_total',
      'Tenant chunks sealed and published early because --max-open-tenants was reached (least recently used first)',
      [],
      () => one(part()?.evictions),
    );
    counter(
      r,
      'tenant_switches_throttled_total',
      'Times input was paused because tenant switches outran --tenant-chunk-rate (bounds files per minute)',
      [],
      () => one(part()?.throttled),
    );
    gauge(r, 'ready', '1 when /readyz answers ready', [], () => one(s.ready() ? 1 : 0));
    gauge(
      r,
      'output_suspended',
      '1 while an output failure (disk full, read-only, EIO) withholds acknowledgements and the link is closed',
      [],
      () => one(s.output ? (s.output().suspended ? 1 : 0) : null),
    );
    counter(
      r,
      'output_failures_total',
      'Output failures that closed the link until the output worked again, by error code',
      ['code'],
      () => byLabel(s.output?.().failures, 'code'),
    );
    gauge(r, 'draining', '1 while shutting down', [], () => one(s.draining() ? 1 : 0));
    counter(
      r,
      'secret_reloads_total',
      'Secret files (token, certificates, pseudonym key) re-read and put in use, by secret',
      ['secret'],
      () => byLabel(s.secrets ? secretCounts(s.secrets()).reloads : undefined, 'secret'),
    );
    counter(
      r,
      'secret_reload_failures_total',
      'Secret file updates refused (expired certificate, key mismatch) or unreadable, by secret',
      ['secret'],
      () => byLabel(s.secrets ? secretCounts(s.secrets()).failures : undefined, 'secret'),
    );
    const agg = () => s.aggregates?.() ?? null;
    counter(r, 'aggregate_files_published_total', 'Hourly aggregate files published', [], () =>
      one(agg()?.filesPublished),
    );
    counter(r, 'aggregate_rows_published_total', 'Rows in the published hourly aggregate files', [], () =>
      one(agg()?.rowsPublished),
    );
    counter(
      r,
      'aggregate_overflow_records_total',
      "Records counted in an hour's (overflow) group: more (tenant, network) pairs than the per-hour bound",
      [],
      () => one(agg()?.overflowRecords),
    );
    counter(
      r,
      'aggregate_journal_replayed_batches_total',
      'Batches replayed from aggregates journals at start (own after a crash, or adopted from dead peers)',
      [],
      () => one(agg()?.replayedBatches),
    );
  }

  private policyMetrics(r: Registry, pol: EnricherMetricSources['policy']): void {
    gauge(r, 'policy_info', 'The policy in force (value 1, version label)', ['version'], () => {
      const p = pol()?.current;
      return p ? [[{ version: p.version }, 1]] : [];
    });
    gauge(r, 'policy_age_seconds', 'Time since the policy in force was loaded', [], () => {
      const p = pol()?.current;
      return one(p ? (Date.now() - p.loadedAt.getTime()) / 1000 : null);
    });
    gauge(r, 'policy_entries', 'Entries of the policy in force, by kind', ['kind'], () => {
      const p = pol()?.current;
      return p
        ? [
            [{ kind: 'domains' }, p.domainCount],
            [{ kind: 'networks' }, p.networkCount],
          ]
        : [];
    });
    gauge(
      r,
      'policy_last_success_timestamp_seconds',
      'Unix time of the last successful policy check',
      [],
      () => {
        const st = pol()?.stats;
        return one(st && st.lastSuccessMs > 0 ? st.lastSuccessMs / 1000 : null);
      },
    );
    counter(r, 'policy_updates_total', 'Policies loaded and swapped in', [], () => one(pol()?.stats.updates));
    counter(
      r,
      'policy_fetch_failures_total',
      'Failed policy loads (last good kept), by reason',
      ['reason'],
      () => byLabel(pol()?.stats.failures, 'reason'),
    );
  }
}
