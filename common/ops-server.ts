// The operations endpoint on --metrics-listen: Prometheus /metrics, /healthz (alive) and
// /readyz (ready to take traffic). Readiness is a function so each component decides.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { listen } from './listen';
import { collectDefaultMetrics, Registry } from './prom';

export interface Readiness {
  ready: boolean;
  /** Why not ready (draining, policy not loaded, output not writable ...). */
  reasons: string[];
}

export interface OpsServerOptions {
  host: string;
  port: number;
  registry: Registry;
  readiness: () => Readiness;
}

/**
 * How often each component samples its event-loop delay (the nodejs_eventloop_lag_{min,max,
 * mean,stddev,p50,p90,p99}_seconds histogram, common/prom.ts): a timer of this period, which
 * wakes the process that often even when nothing else happens. The agent sits beside every DNS server
 * and should cost it nothing at idle: at 20 ms an idle agent woke 49 times a second and used
 * 3.5-3.9 ms of CPU a second; at 1 s, once a second and 0.1 ms (loadtest/PERFORMANCE.md). A
 * stall of the agent's loop shorter than the period is sampled rather than always seen (the
 * dnstap input's counters show a stalled agent too). The enricher keeps 20 ms.
 */
export const EVENT_LOOP_SAMPLE_MS = { agent: 1000, enricher: 20, convert: 20 } as const;

/** A registry with the Node.js process metrics (event-loop lag, heap, RSS) under the component prefix. */
export function createRegistry(component: 'agent' | 'enricher' | 'convert'): Registry {
  const registry = new Registry();
  const prefix = `snowtap_${component}_`;
  collectDefaultMetrics(registry, prefix, EVENT_LOOP_SAMPLE_MS[component]);
  // prom-client exports these gauges with a _total suffix, which `promtool check metrics`
  // rejects (only counters may end in _total); they are diagnostics, not part of the contract.
  for (const bad of [
    'nodejs_active_handles_total',
    'nodejs_active_requests_total',
    'nodejs_active_resources_total',
  ]) {
    registry.removeSingleMetric(prefix + bad);
  }
  return registry;
}

export class OpsServer {
  private readonly server: Server;

  constructor(private readonly opts: OpsServerOptions) {
    this.server = createServer((req, res) => {
      const url = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      if (url === '/healthz') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      } else if (url === '/readyz') {
        const r = this.opts.readiness();
        res
          .writeHead(r.ready ? 200 : 503, { 'content-type': 'application/json' })
          .end(JSON.stringify({ ready: r.ready, reasons: r.reasons }) + '\n');
      } else if (url === '/metrics') {
        this.opts.registry.metrics().then(
          (text) => res.writeHead(200, { 'content-type': this.opts.registry.contentType }).end(text),
          (err) => res.writeHead(500).end(String(err)),
        );
      } else {
        res
          .writeHead(404, { 'content-type': 'text/plain' })
          .end('not found: try /metrics, /healthz, /readyz\n');
      }
    });
    // Scrapers use keep-alive; don't let idle sockets hold a shutdown.
    this.server.keepAliveTimeout = 5000;
  }

  async listen(): Promise<AddressInfo> {
    await listen(this.server, { port: this.opts.port, host: this.opts.host });
    return this.server.address() as AddressInfo;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
