// Prometheus metrics of the agent (snowtap_agent_*). The hot path only bumps plain numbers
// in the agent's counters; they are copied into prom-client at scrape time (collect), so a
// record costs no metrics call. Only the ack latency histogram is observed live, per batch.

import { byLabel, one, scrapedCounter, scrapedGauge } from '../common/metrics';
import { Gauge, Histogram, type Registry } from '../common/prom';
import { secretCounts } from '../common/secret-files';
import { sharedReadStats } from '../common/shared-reads';
import type { Agent } from './agent';
import type { StripeStats } from './link';

type Read = () => number | Record<string, number>;

/** A read as samples: one number, or numbers by `label`. */
const samples = (read: Read, label: string | undefined) => () => {
  const v = read();
  return typeof v === 'number' ? one(v) : byLabel(v, label!);
};

function counter(registry: Registry, name: string, help: string, read: Read, label?: string): void {
  scrapedCounter(registry, name, help, label ? [label] : [], samples(read, label));
}

function gauge(registry: Registry, name: string, help: string, read: Read, label?: string): void {
  scrapedGauge(registry, name, help, label ? [label] : [], samples(read, label));
}

/** Registers every agent metric on `registry` (createRegistry('agent') adds the process ones). */
export function registerAgentMetrics(registry: Registry, agent: Agent): void {
  const c = agent.counters;
  const link = agent.client.stats;
  const input = () => agent.server?.stats;
  const p = 'snowtap_agent_';
  new Gauge({
    name: `${p}info`,
    help: 'Agent identity: agent_id, this process incarnation (record ids carry both) and the enricher addresses it sends to',
    labelNames: ['id', 'incarnation', 'enricher'],
    registers: [registry],
  }).set(
    {
      id: agent.options.id,
      incarnation: agent.options.incarnation,
      // --enricher as given (HOST:PORT[,...]): makes an agent attributable to the release it
      // sends to, whatever labels the scrape path adds (autoscaling queries join on it).
      enricher: agent.options.enrichers
        .map((e) => (e.host.includes(':') ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`))
        .join(','),
    },
    1,
  );

  counter(registry, `${p}records_in_total`, 'dnstap data frames received from producers', () => c.recordsIn);
  counter(registry, `${p}bytes_in_total`, 'dnstap payload bytes received from producers', () => c.bytesIn);
  counter(
    registry,
    `${p}records_sampled_out_total`,
    'Records skipped by --sample (not drops: sample_rate accounts for them)',
    () => c.sampledOut,
  );
  counter(
    registry,
    `${p}secret_reloads_total`,
    'Secret files (token, certificates) re-read and put in use for new connections, by secret',
    () => secretCounts(agent.secrets).reloads,
    'secret',
  );
  counter(
    registry,
    `${p}secret_reload_failures_total`,
    'Secret file updates refused (expired certificate, key mismatch) or unreadable, by secret',
    () => secretCounts(agent.secrets).failures,
    'secret',
  );
  counter(
    registry,
    `${p}records_dropped_total`,
    'Records dropped, by reason',
    () => ({ ...c.dropped, oversize: c.dropped.oversize + (input()?.oversizeFrames ?? 0) }),
    'reason',
  );
  counter(
    registry,
    `${p}records_acked_total`,
    'Records acknowledged by enrichers (delivered)',
    () => link.recordsAcked,
  );
  counter(
    registry,
    `${p}bytes_acked_total`,
    'Batch frame bytes acknowledged by enrichers',
    () => link.bytesAcked,
  );
  counter(registry, `${p}batches_sealed_total`, 'Batches built', () => c.batchesSealed);
  counter(
    registry,
    `${p}batches_sent_total`,
    'Batches written to a link connection, re-sends included',
    () => link.batchesSent,
  );
  counter(
    registry,
    `${p}batches_resent_total`,
    'Batches written again after their connection ended unacknowledged',
    () => link.batchesResent,
  );
  counter(registry, `${p}batches_acked_total`, 'Batches acknowledged', () => link.batchesAcked);
  const latency = new Histogram({
    name: `${p}ack_latency_seconds`,
    help: 'Time from sending a batch to its acknowledgement',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  agent.client.onAckLatency = (s) => latency.observe(s);

  gauge(
    registry,
    `${p}link_connections`,
    'Link connections by role',
    () => ({ ...agent.client.roles() }),
    'role',
  );
  counter(registry, `${p}link_connect_attempts_total`, 'Link connection attempts', () => link.connects);
  counter(
    registry,
    `${p}link_connect_failures_total`,
    'Failed link connection attempts, by error code',
    () => link.connectFailures,
    'code',
  );
  counter(
    registry,
    `${p}link_reconnects_total`,
    'Connection attempts after a failure or a lost connection',
    () => link.reconnects,
  );
  counter(
    registry,
    `${p}link_connections_lost_total`,
    'Link connections that ended without our asking',
    () => link.lost,
  );
  counter(
    registry,
    `${p}link_switches_total`,
    'Traffic moved to a newly opened connection (switch interval, switchNow)',
    () => link.switches,
  );
  counter(
    registry,
    `${p}link_saturated_switches_total`,
    'Switches made early because the unacknowledged window stayed full (--saturated-switch)',
    () => link.saturatedSwitches,
  );
  counter(
    registry,
    `${p}link_join_switches_total`,
    'Switches that reached a pod which had just joined the Service (--discovery, service mode)',
    () => link.joinSwitches,
  );
  counter(registry, `${p}link_drains_total`, 'Drain requests received from enrichers', () => link.drains);
  // Stripes (--active-connections): label `stripe` is the index, bounded by --max-active-connections.
  const client = agent.client;
  const perStripe = (read: (s: StripeStats) => number) => () => {
    const out: Record<string, number> = {};
    client.stripeStats.forEach((s, i) => {
      out[String(i)] = read(s);
    });
    return out;
  };
  gauge(
    registry,
    `${p}link_active_connections`,
    'Stripes carrying traffic now (--active-connections, or what auto chose)',
    () => client.activeConnections,
  );
  counter(
    registry,
    `${p}link_collisions_total`,
    'New connections that landed on an enricher another stripe uses (re-dialed, bounded)',
    () => link.collisions,
  );
  counter(
    registry,
    `${p}link_stripe_changes_total`,
    'Changes of the stripe count made by --active-connections auto',
    () => link.stripeChanges,
  );
  counter(
    registry,
    `${p}link_stripe_batches_sent_total`,
    'Batches written, by stripe',
    perStripe((s) => s.batchesSent),
    'stripe',
  );
  counter(
    registry,
    `${p}link_stripe_records_acked_total`,
    'Records acknowledged, by stripe',
    perStripe((s) => s.recordsAcked),
    'stripe',
  );
  counter(
    registry,
    `${p}link_stripe_ack_seconds_total`,
    'Sum of ack latencies in seconds, by stripe (divide by batches acked for the mean)',
    perStripe((s) => s.ackSeconds),
    'stripe',
  );
  counter(
    registry,
    `${p}link_stripe_batches_acked_total`,
    'Batches acknowledged, by stripe',
    perStripe((s) => s.batchesAcked),
    'stripe',
  );
  counter(
    registry,
    `${p}link_stripe_switches_total`,
    'Switches, by stripe',
    perStripe((s) => s.switches),
    'stripe',
  );
  counter(
    registry,
    `${p}link_stripe_collisions_total`,
    'Collisions, by stripe',
    perStripe((s) => s.collisions),
    'stripe',
  );
  counter(
    registry,
    `${p}link_rejects_total`,
    'Handshake rejects, by reject code',
    () => link.rejects,
    'code',
  );
  counter(
    registry,
    `${p}link_protocol_errors_total`,
    'Link connections closed on a protocol error, by code',
    () => link.protocolErrors,
    'code',
  );

  gauge(
    registry,
    `${p}buffer_bytes`,
    'Batch bytes held in memory (queued and in flight)',
    () => agent.buffer.memBytes,
  );
  gauge(
    registry,
    `${p}backlog_bytes`,
    'Batch bytes waiting to be sent, in memory and spooled (in flight excluded): grows when enrichers fall behind',
    () => agent.buffer.queuedBytes,
  );
  gauge(registry, `${p}buffer_limit_bytes`, 'The --buffer-bytes bound', () => agent.options.bufferBytes);
  gauge(
    registry,
    `${p}buffer_batches`,
    'Batches waiting to be sent (memory and spool)',
    () => agent.buffer.queued,
  );
  gauge(
    registry,
    `${p}in_flight_batches`,
    'Batches sent and not yet acknowledged',
    () => agent.buffer.inFlight,
  );
  gauge(
    registry,
    `${p}spool_bytes`,
    'Bytes of batch files in the spool directory',
    () => agent.spool?.bytes ?? 0,
  );
  gauge(registry, `${p}spool_files`, 'Batch files in the spool directory', () => agent.spool?.files ?? 0);

  gauge(
    registry,
    `${p}input_connections`,
    'Open dnstap producer connections',
    () => input()?.connectionsOpen ?? 0,
  );
  counter(
    registry,
    `${p}input_connections_total`,
    'dnstap producer connections accepted',
    () => input()?.connectionsTotal ?? 0,
  );
  counter(
    registry,
    `${p}input_connections_refused_total`,
    'dnstap producer connections refused or cut before their handshake finished, by reason',
    () => ({ ...(input()?.refusedByReason ?? {}) }),
    'reason',
  );
  counter(
    registry,
    `${p}input_protocol_errors_total`,
    'dnstap connections closed on a Frame Streams protocol error, by code',
    () => ({ ...(input()?.protocolErrors ?? {}) }),
    'code',
  );
  counter(
    registry,
    `${p}input_read_path_total`,
    'Plain (non-TLS) dnstap connections by how they are read: shared (one shared read buffer, ' +
      'common/shared-reads.ts) or ordinary (this Node lacks the socket internals it relies on)',
    () => ({ shared: sharedReadStats.adopted, ordinary: sharedReadStats.ordinary }),
    'path',
  );
  counter(
    registry,
    `${p}input_reads_total`,
    'Socket reads of the plain dnstap connections read through the shared buffer: records_in_total / ' +
      'this is the frames one read (one event-loop wakeup) brings',
    () => sharedReadStats.reads,
  );
}
