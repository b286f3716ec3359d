// Prometheus metrics of the EndpointWatcher (snowtap_agent_discovery_*), read on scrape.
import type { Registry } from 'prom-client';
import { byLabel, one, scrapedCounter, scrapedGauge } from '../../common/metrics';
import type { EndpointWatcher } from './k8s-watcher';

const P = 'snowtap_agent_discovery_';

export function registerDiscoveryMetrics(registry: Registry, watcher: EndpointWatcher): void {
  const s = () => watcher.stats;
  const counter = (name: string, help: string, read: () => number) =>
    scrapedCounter(registry, P + name, help, [], () => one(read()));
  const gauge = (name: string, help: string, read: () => number) =>
    scrapedGauge(registry, P + name, help, [], () => one(read()));
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
  scrapedCounter(
    registry,
    `${P}errors_total`,
    'Discovery failures by code (API unreachable, auth, TLS, bad slices ...)',
    ['code'],
    () => byLabel(s().errors, 'code'),
  );
  gauge('watching', '1 while a watch stream is open', () => (s().watching ? 1 : 0));
  gauge(
    'last_sync_timestamp_seconds',
    'When the last list or watch event arrived',
    () => s().lastSyncMs / 1000,
  );
}
