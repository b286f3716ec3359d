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

type Aggregator = 'min' | 'max' | 'average';

/**
 * prom-client's event-loop lag metrics (the same names, help and aggregators), with the
 * histogram read as a delay. Node's monitorEventLoopDelay records the time between its timer's
 * callbacks, which is the sampling period plus the delay, so prom-client's figures carry the
 * period (a minimum and p99 of ~20 ms on an idle loop sampled every 20 ms; ~1 s at a period of
 * 1 s). Here the period is taken off. A scrape window without a sample (shorter than the
 * period) leaves the histogram's figures as they were, where prom-client would report a
 * minimum of 2^63 ns and a mean of NaN. The histogram restarts at every scrape, as in
 * prom-client; nodejs_eventloop_lag_seconds is the delay of a setImmediate started at the
 * previous scrape.
 */
const eventLoopLag: DefaultMetric = (registry, { prefix, eventLoopMonitoringPrecision: periodMs }) => {
  const { monitorEventLoopDelay } = require('node:perf_hooks') as typeof import('node:perf_hooks');
  const histogram = monitorEventLoopDelay({ resolution: periodMs });
  histogram.enable();
  const periodNs = periodMs * 1e6;
  const seconds = (ns: number) => Math.max(0, ns - periodNs) / 1e9;
  const gauge = (suffix: string, help: string, aggregator: Aggregator, collect?: () => void) =>
    new Gauge({
      name: `${prefix}nodejs_eventloop_lag${suffix}_seconds`,
      help,
      registers: [registry],
      aggregator,
      collect,
    });
  const lag = gauge('', 'Lag of event loop in seconds.', 'average', () => {
    const start = process.hrtime.bigint();
    setImmediate(() => lag.set(Number(process.hrtime.bigint() - start) / 1e9));
    if (histogram.count > 0) {
      min.set(seconds(histogram.min));
      max.set(seconds(histogram.max));
      mean.set(seconds(histogram.mean));
      stddev.set(histogram.stddev / 1e9);
      p50.set(seconds(histogram.percentile(50)));
      p90.set(seconds(histogram.percentile(90)));
      p99.set(seconds(histogram.percentile(99)));
    }
    histogram.reset();
  });
  const min = gauge('_min', 'The minimum recorded event loop delay.', 'min');
  const max = gauge('_max', 'The maximum recorded event loop delay.', 'max');
  const mean = gauge('_mean', 'The mean of the recorded event loop delays.', 'average');
  const stddev = gauge('_stddev', 'The standard deviation of the recorded event loop delays.', 'average');
  const p50 = gauge('_p50', 'The 50th percentile of the recorded event loop delays.', 'average');
  const p90 = gauge('_p90', 'The 90th percentile of the recorded event loop delays.', 'average');
  const p99 = gauge('_p99', 'The 99th percentile of the recorded event loop delays.', 'average');
};

/**
 * prom-client's collectDefaultMetrics (same metrics, names, help and order) with the CPU
 * metric above instead of the one that loads OpenTelemetry, and the event-loop lag without
 * the sampling period in it (above).
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
    eventLoopLag,
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
