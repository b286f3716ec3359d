// A real Prometheus (Debian's) inside a test bed's network namespace, so it can scrape pods at
// their own addresses as in a cluster. Targets come from a file_sd file that setTargets()
// replaces atomically (write + rename; Prometheus picks it up through inotify), the way
// Kubernetes service discovery adds and drops pods; each target carries the labels the scrape
// path under test would attach (ServiceMonitor: service/namespace/pod..., PodMonitor, annotation
// scraping). query() asks /api/v1/query from inside the namespace, as KEDA's Prometheus scaler
// does, and returns what the HPA stand-in takes.
// Measured: a target added here is first scraped about 5.3 s later, whatever the file_sd refresh:
// Prometheus' discovery manager hands target updates to the scrapers every 5 s, in a cluster too,
// so that delay belongs in the scale-up time budget.

import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BedError } from './bed-errors';
import type { Netns, NetnsProcess } from './netns';
import type { ProbeClient } from './pod-probe';
import { instantQueryUrl, parseInstantQuery } from './scaledobject';

export const PROMETHEUS_BINARY = '/usr/bin/prometheus';
const START_TIMEOUT_MS = 20_000;

export interface ScrapeTarget {
  /** host:port inside the namespace. */
  address: string;
  labels: Record<string, string>;
}

export interface ScrapeJob {
  name: string;
  /** Seconds; the chart's ServiceMonitor default, or what the test wants. */
  intervalSeconds: number;
  metricsPath?: string;
}

export interface PrometheusBedOptions {
  /** host:port to listen on inside the namespace (an address on its lo). */
  listen: string;
  jobs: ScrapeJob[];
  binary?: string;
}

export function prometheusConfig(jobs: readonly ScrapeJob[], dir: string): string {
  // YAML is a superset of JSON: the config is written as JSON to avoid a YAML emitter.
  return JSON.stringify(
    {
      global: { evaluation_interval: '15s' },
      scrape_configs: jobs.map((j) => ({
        job_name: j.name,
        scrape_interval: `${j.intervalSeconds}s`,
        scrape_timeout: `${Math.min(j.intervalSeconds, 10)}s`,
        metrics_path: j.metricsPath ?? '/metrics',
        file_sd_configs: [{ files: [path.join(dir, `${j.name}.targets.json`)], refresh_interval: '1s' }],
      })),
    },
    null,
    2,
  );
}

export class PrometheusBed {
  readonly listen: string;
  readonly proc: NetnsProcess;
  private readonly dir: string;
  private readonly probe: ProbeClient;
  private readonly jobs: readonly ScrapeJob[];
  private log = '';

  private constructor(
    listen: string,
    proc: NetnsProcess,
    dir: string,
    probe: ProbeClient,
    jobs: readonly ScrapeJob[],
  ) {
    this.listen = listen;
    this.proc = proc;
    this.dir = dir;
    this.probe = probe;
    this.jobs = jobs;
    proc.child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      this.log = (this.log + d).slice(-8192);
    });
  }

  /** Starts Prometheus in `netns`; resolves once /-/ready answers 200 through `probe`. */
  static async start(netns: Netns, probe: ProbeClient, o: PrometheusBedOptions): Promise<PrometheusBed> {
    const dir = mkdtempSync(path.join(tmpdir(), 'snowtap-prometheus-'));
    writeFileSync(path.join(dir, 'prometheus.yml'), prometheusConfig(o.jobs, dir));
    for (const j of o.jobs) writeFileSync(path.join(dir, `${j.name}.targets.json`), '[]');
    const proc = netns.spawn([
      o.binary ?? PROMETHEUS_BINARY,
      `--config.file=${path.join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=${o.listen}`,
      '--log.level=warn',
    ]);
    const p = new PrometheusBed(o.listen, proc, dir, probe, o.jobs);
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (!proc.running) {
        rmSync(dir, { recursive: true, force: true });
        throw new BedError('BED_PROBE_FAILED', `prometheus exited during start-up: ${p.log}`);
      }
      const a = await probe.request({ op: 'http', url: `http://${o.listen}/-/ready` });
      if (a.ok && a.status === 200) return p;
      if (Date.now() > deadline) {
        await p.stop();
        throw new BedError(
          'BED_PROBE_FAILED',
          `prometheus not ready within ${START_TIMEOUT_MS} ms: ${p.log}`,
        );
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Replaces a job's targets (atomically: Prometheus never reads a half-written file). */
  setTargets(job: string, targets: readonly ScrapeTarget[]): void {
    if (!this.jobs.some((j) => j.name === job))
      throw new BedError('BED_INVALID_ARGUMENT', `no scrape job '${job}'`);
    const file = path.join(this.dir, `${job}.targets.json`);
    const body = JSON.stringify(targets.map((t) => ({ targets: [t.address], labels: t.labels })));
    writeFileSync(`${file}.tmp`, body);
    renameSync(`${file}.tmp`, file);
  }

  /** An instant query; the sample values (see parseInstantQuery), or a thrown BED_PROBE_FAILED. */
  async query(promql: string): Promise<number[]> {
    const a = await this.probe.request({ op: 'http', url: instantQueryUrl(`http://${this.listen}`, promql) });
    if (!a.ok) throw new BedError('BED_PROBE_FAILED', `prometheus at ${this.listen}: ${a.error}`);
    return parseInstantQuery(a.status ?? 0, a.body ?? '');
  }

  async stop(): Promise<void> {
    await this.proc.stop('SIGTERM', 5_000);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
