// A real Prometheus server (Debian's `prometheus` package) for tests: started on a loopback
// port with a scrape config the test writes, queried through its HTTP API, stopped by PID.
// Also the scrape configs that reproduce the target labels of the three common Kubernetes
// scrape paths (prometheus-operator ServiceMonitor and PodMonitor, and the community chart's
// annotation-driven `kubernetes-pods` job) for targets on 127.x addresses standing for pods.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import YAML from 'yaml';
import { freeTcpPort, waitUntil } from './pipeline-procs';

export interface PromServer {
  url: string;
  child: ChildProcess;
  log: () => string;
  stop: () => Promise<void>;
}

/** Starts `bin` with `scrapeConfigs`; ready once /-/ready answers. Stopped after the test. */
export async function startPrometheus(
  t: TestContext,
  bin: string,
  scrapeConfigs: readonly object[],
  scrapeInterval = '1s',
): Promise<PromServer> {
  const dir = mkdtempSync(path.join(tmpdir(), 'snowtap-prom-'));
  const port = await freeTcpPort();
  const config = {
    global: { scrape_interval: scrapeInterval, evaluation_interval: scrapeInterval },
    scrape_configs: scrapeConfigs,
  };
  writeFileSync(path.join(dir, 'prometheus.yml'), YAML.stringify(config));
  const child = spawn(
    bin,
    [
      `--config.file=${path.join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let err = '';
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  t.after(async () => {
    await stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const url = `http://127.0.0.1:${port}`;
  await waitUntil(
    async () => (await fetch(`${url}/-/ready`)).ok,
    `prometheus ready (${err.slice(-500)})`,
    30_000,
  );
  return { url, child, log: () => err, stop };
}

export interface Sample {
  metric: Record<string, string>;
  value: number;
}

/** An instant query; throws on an HTTP or PromQL error (as a scaler would see it). */
export async function query(url: string, expr: string): Promise<Sample[]> {
  const res = await fetch(`${url}/api/v1/query?${new URLSearchParams({ query: expr })}`);
  const body = (await res.json()) as {
    status: string;
    error?: string;
    data?: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
  };
  if (body.status !== 'success') throw new Error(`query failed: ${body.error} (${expr})`);
  if (body.data!.resultType !== 'vector') throw new Error(`expected a vector, got ${body.data!.resultType}`);
  return body.data!.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
}

/** A pod as Kubernetes service discovery would describe it; `ip` is a 127.x address. */
export interface FakePod {
  namespace: string;
  name: string;
  ip: string;
  container: string;
  /** Named container ports. */
  ports: Record<string, number>;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** For endpoints discovery (ServiceMonitor): the Service selecting the pod, if any. */
  service?: string;
}

// Kubernetes SD sanitises label and annotation names into Prometheus label names.
const sanitize = (k: string) => k.replace(/[^a-zA-Z0-9_]/g, '_');

function metaLabels(p: FakePod, port: string): Record<string, string> {
  const out: Record<string, string> = {
    __meta_kubernetes_namespace: p.namespace,
    __meta_kubernetes_pod_name: p.name,
    __meta_kubernetes_pod_ip: p.ip,
    __meta_kubernetes_pod_container_name: p.container,
    __meta_kubernetes_pod_container_port_name: port,
    __meta_kubernetes_pod_container_port_number: String(p.ports[port]),
    __meta_kubernetes_pod_phase: 'Running',
    __meta_kubernetes_pod_ready: 'true',
    __meta_kubernetes_pod_node_name: 'node-1',
  };
  for (const [k, v] of Object.entries(p.labels)) out[`__meta_kubernetes_pod_label_${sanitize(k)}`] = v;
  for (const [k, v] of Object.entries(p.annotations))
    out[`__meta_kubernetes_pod_annotation_${sanitize(k)}`] = v;
  if (p.service) {
    out.__meta_kubernetes_service_name = p.service;
    out.__meta_kubernetes_endpoint_port_name = port;
  }
  return out;
}

function target(p: FakePod, port: string) {
  return { targets: [`${p.ip}:${p.ports[port]}`], labels: metaLabels(p, port) };
}

/**
 * What prometheus-operator generates for a ServiceMonitor endpoint (port `port`): job = the
 * Service name; namespace, service, pod, container, endpoint labels; honor_labels false.
 */
export function serviceMonitorJob(name: string, pods: readonly FakePod[], port: string): object {
  return {
    job_name: `serviceMonitor/${name}`,
    honor_labels: false,
    static_configs: pods.map((p) => target(p, port)),
    relabel_configs: [
      { source_labels: ['__meta_kubernetes_endpoint_port_name'], regex: port, action: 'keep' },
      { source_labels: ['__meta_kubernetes_namespace'], target_label: 'namespace' },
      { source_labels: ['__meta_kubernetes_service_name'], target_label: 'service' },
      { source_labels: ['__meta_kubernetes_pod_name'], target_label: 'pod' },
      { source_labels: ['__meta_kubernetes_pod_container_name'], target_label: 'container' },
      { source_labels: ['__meta_kubernetes_service_name'], target_label: 'job' },
      { target_label: 'endpoint', replacement: port },
    ],
  };
}

/**
 * What prometheus-operator generates for a PodMonitor endpoint: job = <namespace>/<name> of
 * the PodMonitor; namespace, pod, container, endpoint labels; no Service, no pod-label copies.
 */
export function podMonitorJob(
  monitorNs: string,
  name: string,
  pods: readonly FakePod[],
  port: string,
): object {
  return {
    job_name: `podMonitor/${monitorNs}/${name}`,
    honor_labels: false,
    static_configs: pods.map((p) => target(p, port)),
    relabel_configs: [
      { source_labels: ['__meta_kubernetes_pod_container_port_name'], regex: port, action: 'keep' },
      { source_labels: ['__meta_kubernetes_namespace'], target_label: 'namespace' },
      { source_labels: ['__meta_kubernetes_pod_name'], target_label: 'pod' },
      { source_labels: ['__meta_kubernetes_pod_container_name'], target_label: 'container' },
      { target_label: 'job', replacement: `${monitorNs}/${name}` },
      { target_label: 'endpoint', replacement: port },
    ],
  };
}

/**
 * The prometheus-community `prometheus` chart's `kubernetes-pods` job (values.yaml,
 * serverFiles prometheus.yml): keeps pods annotated prometheus.io/scrape=true, takes port and
 * path from the annotations, copies pod labels (labelmap), adds namespace, pod and node;
 * honor_labels true. Targets start at the pod's first container port, as pod SD lists them.
 */
export function annotationsJob(pods: readonly FakePod[]): object {
  return {
    job_name: 'kubernetes-pods',
    honor_labels: true,
    static_configs: pods.map((p) => target(p, Object.keys(p.ports)[0]!)),
    relabel_configs: [
      {
        source_labels: ['__meta_kubernetes_pod_annotation_prometheus_io_scrape'],
        action: 'keep',
        regex: 'true',
      },
      {
        source_labels: ['__meta_kubernetes_pod_annotation_prometheus_io_scrape_slow'],
        action: 'drop',
        regex: 'true',
      },
      {
        source_labels: ['__meta_kubernetes_pod_annotation_prometheus_io_scheme'],
        action: 'replace',
        regex: '(https?)',
        target_label: '__scheme__',
      },
      {
        source_labels: ['__meta_kubernetes_pod_annotation_prometheus_io_path'],
        action: 'replace',
        target_label: '__metrics_path__',
        regex: '(.+)',
      },
      {
        source_labels: ['__meta_kubernetes_pod_annotation_prometheus_io_port', '__meta_kubernetes_pod_ip'],
        action: 'replace',
        regex: '(\\d+);(([A-Fa-f0-9]{1,4}::?){1,7}[A-Fa-f0-9]{1,4})',
        replacement: '[$2]:$1',
        target_label: '__address__',
      },
      {
        source_labels: ['__meta_kubernetes_pod_annotation_prometheus_io_port', '__meta_kubernetes_pod_ip'],
        action: 'replace',
        regex: '(\\d+);((([0-9]+?)(\\.|$)){4})',
        replacement: '$2:$1',
        target_label: '__address__',
      },
      {
        action: 'labelmap',
        regex: '__meta_kubernetes_pod_annotation_prometheus_io_param_(.+)',
        replacement: '__param_$1',
      },
      { action: 'labelmap', regex: '__meta_kubernetes_pod_label_(.+)' },
      { source_labels: ['__meta_kubernetes_namespace'], action: 'replace', target_label: 'namespace' },
      { source_labels: ['__meta_kubernetes_pod_name'], action: 'replace', target_label: 'pod' },
      {
        source_labels: ['__meta_kubernetes_pod_phase'],
        regex: 'Pending|Succeeded|Failed|Completed',
        action: 'drop',
      },
      { source_labels: ['__meta_kubernetes_pod_node_name'], action: 'replace', target_label: 'node' },
    ],
  };
}
