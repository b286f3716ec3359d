// prom-client without its index: the index also loads the push gateway (http, https, zlib),
// the cluster aggregator, Summary (tdigest) and, through the default CPU metric, the whole
// OpenTelemetry API (44 modules, for exemplars this project does not use). Together ~10 MiB
// of RSS in the agent sidecar on Node 24. The classes are the same objects the index exports
// (Node caches the module files), so a Registry from 'prom-client' works with these.
import type * as Prom from 'prom-client';

export type Registry = Prom.Registry;
export type Counter<T extends string = string> = Prom.Counter<T>;
export type Gauge<T extends string = string> = Prom.Gauge<T>;
export type Histogram<T extends string = string> = Prom.Histogram<T>;
export const Registry: typeof Prom.Registry = require('prom-client/lib/registry');
export const Counter: typeof Prom.Counter = require('prom-client/lib/counter');
export const Gauge: typeof Prom.Gauge = require('prom-client/lib/gauge');
export const Histogram: typeof Prom.Histogram = require('prom-client/lib/histogram');

type DefaultMetric = (
  registry: Registry,
  config: { prefix: string; eventLoopMonitoringPrecision: number },
) => void;

/** prom-client's process_cpu_*_seconds_total without exemplars (their only use of OpenTelemetry). */
const processCpuTotal: DefaultMetric = (registry, { prefix }) => {
  let last = process.cpuUsage();
  const user = new Counter({
    name: `${prefix}process_cpu_user_seconds_total`,
    help: 'Total user CPU time spent in seconds.',
    registers: [registry],
    collect() {
      const now = process.cpuUsage();
      const u = now.user - last.user;
      const s = now.system - last.system;
      last = now;
      user.inc(u / 1e6);
      system.inc(s / 1e6);
      total.inc((u + s) / 1e6);
    },
  });
  const system = new Counter({
    name: `${prefix}process_cpu_system_seconds_total`,
    help: 'Total system CPU time spent in seconds.',
    registers: [registry],
  });
  const total = new Counter({
    name: `${prefix}process_cpu_seconds_total`,
    help: 'Total user and system CPU time spent in seconds.',
    registers: [registry],
  });
};

/**
 * prom-client's collectDefaultMetrics (same metrics, names, help and order) with the CPU
 * metric above instead of the one that loads OpenTelemetry.
 */
export function collectDefaultMetrics(
  registry: Registry,
  prefix: string,
  eventLoopMonitoringPrecision: number,
): void {
  const lib = (name: string) => require(`prom-client/lib/metrics/${name}`) as DefaultMetric;
  const metrics: DefaultMetric[] = [
    processCpuTotal,
    lib('processStartTime'),
    lib('osMemoryHeap'),
    lib('processOpenFileDescriptors'),
    lib('processMaxFileDescriptors'),
    lib('eventLoopLag'),
    ...(typeof (process as { getActiveResourcesInfo?: unknown }).getActiveResourcesInfo === 'function'
      ? [lib('processResources')]
      : []),
    lib('processHandles'),
    lib('processRequests'),
    lib('heapSizeAndUsed'),
    lib('heapSpacesSizeAndUsed'),
    lib('version'),
    lib('gc'),
  ];
  for (const m of metrics) m(registry, { prefix, eventLoopMonitoringPrecision });
}
