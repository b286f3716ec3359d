// Prometheus metrics of the EndpointWatcher (snowtap_agent_discovery_*), read on scrape.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { EndpointWatcher } from './k8s-watcher';

const P = 'snowtap_agent_discovery_';

export function registerDiscoveryMetrics(registry: Registry, watcher: EndpointWatcher): void {
  const s = () => watcher.stats;
  const counter = (name: string, help: string, read: () => number) =>
    new Counter({
      name: P + name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name: P + name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  gauge('endpoints', 'Ready enricher endpoints in the last EndpointSlice view', () => s().endpoints);
  counter(
    'changes_total',
    'Changes of the ready endpoint set (each switches the idle connection)',
    () => s().changes,
  );
  counter('lists_total', 'EndpointSlice lists (first and relists)', () => s().lists);
  counter('relists_total', 'Relists after 410 Gone or a lost resourceVersion', () => s().relists);
  counter('watch_restarts_total', 'Watch streams re-opened', () => s().watchRestarts);
  counter('events_total', 'Watch events applied', () => s().events);
  new Counter({
    name: `${P}errors_total`,
    help: 'Discovery failures by code (API unreachable, auth, TLS, bad slices ...)',
    labelNames: ['code'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [code, n] of Object.entries(s().errors)) this.inc({ code }, n);
    },
  });
  gauge('watching', '1 while a watch stream is open', () => (s().watching ? 1 : 0));
  gauge(
    'last_sync_timestamp_seconds',
    'When the last list or watch event arrived',
    () => s().lastSyncMs / 1000,
  );
}
