// Test-side helpers for the deployment artefacts (helm/snowtap, k8s/, dashboards/): find the
// real helm and kubectl binaries (scripts/ci/get-helm.sh puts them in .tools/bin), apply the
// project's interop rule when they are missing (skip, or FAIL when SNOWTAP_REQUIRE_INTEROP=1),
// render the chart into parsed objects, and list the metric names the product defines so
// dashboards and autoscaling queries can be checked against the source.
import { execFile } from 'node:child_process';
import { accessSync, constants, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { TestContext } from 'node:test';
import YAML from 'yaml';
import { interopMissing } from './interop';

export const REPO_ROOT = path.resolve(__dirname, '../../..');
export const CHART_DIR = path.join(REPO_ROOT, 'helm/snowtap');
export const K8S_DIR = path.join(REPO_ROOT, 'k8s');
const TOOLS_BIN = path.join(REPO_ROOT, '.tools/bin');
const INSTALL_HINT = 'run scripts/ci/get-helm.sh (installs helm and kubectl into .tools/bin)';

/** A rendered Kubernetes object; only the fields every object has are typed. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  // biome-ignore lint/suspicious/noExplicitAny: tests walk arbitrary manifest shapes
  [key: string]: any;
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/** HELM_BIN / KUBECTL_BIN, then .tools/bin, then PATH. */
export function findTool(name: 'helm' | 'kubectl'): string | null {
  const fromEnv = process.env[`${name.toUpperCase()}_BIN`];
  if (fromEnv && isExecutable(fromEnv)) return fromEnv;
  const local = path.join(TOOLS_BIN, name);
  if (isExecutable(local)) return local;
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && isExecutable(path.join(dir, name))) return path.join(dir, name);
  }
  return null;
}

/** The tool's path, or null after skipping the test (FAIL instead when interop is required). */
export function requireTool(t: TestContext, name: 'helm' | 'kubectl'): string | null {
  const bin = findTool(name);
  if (bin) return bin;
  interopMissing(t, `${name} not found: ${INSTALL_HINT}`);
  return null;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(bin: string, args: readonly string[], cwd = REPO_ROOT): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const env = {
      ...process.env,
      HELM_CACHE_HOME: helmHome('cache'),
      HELM_CONFIG_HOME: helmHome('config'),
      HELM_DATA_HOME: helmHome('data'),
    };
    execFile(bin, args, { cwd, maxBuffer: 64 << 20, env }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') {
        reject(err);
        return;
      }
      resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
    });
  });
}

// Keep helm's cache/config out of $HOME so parallel or repeated runs start alike.
function helmHome(kind: string): string {
  return path.join(REPO_ROOT, '.tools', `helm-${kind}`);
}

export interface RenderOptions {
  release?: string;
  namespace?: string;
  /** Values files, relative to the chart (e.g. ci/keda-values.yaml) or absolute. */
  values?: readonly string[];
  /** --set assignments, e.g. 'autoscaling.mode=keda'. */
  set?: readonly string[];
  /** Extra API versions the "cluster" serves (e.g. keda.sh/v1alpha1). */
  apiVersions?: readonly string[];
  kubeVersion?: string;
  chart?: string;
}

export function templateArgs(o: RenderOptions = {}): string[] {
  const args = [
    'template',
    o.release ?? 'snowtap',
    o.chart ?? CHART_DIR,
    '--namespace',
    o.namespace ?? 'snowtap',
  ];
  for (const v of o.values ?? []) args.push('--values', path.isAbsolute(v) ? v : path.join(CHART_DIR, v));
  for (const s of o.set ?? []) args.push('--set', s);
  for (const a of o.apiVersions ?? []) args.push('--api-versions', a);
  if (o.kubeVersion) args.push('--kube-version', o.kubeVersion);
  return args;
}

/** Parses a multi-document YAML stream into objects, dropping empty documents. */
export function parseManifests(text: string): K8sObject[] {
  const out: K8sObject[] = [];
  for (const doc of YAML.parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`invalid YAML: ${doc.errors[0]!.message}`);
    const obj = doc.toJS({ maxAliasCount: -1 });
    if (obj !== null && obj !== undefined) out.push(obj as K8sObject);
  }
  return out;
}

/** `helm template` with the given options; throws with helm's message when it fails. */
export async function render(helm: string, o: RenderOptions = {}): Promise<K8sObject[]> {
  const r = await run(helm, templateArgs(o));
  if (r.code !== 0) throw new Error(`helm template failed (${r.code}): ${r.stderr}`);
  return parseManifests(r.stdout);
}

export function find(objs: readonly K8sObject[], kind: string, name?: string): K8sObject | undefined {
  return objs.find((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
}

export function get(objs: readonly K8sObject[], kind: string, name?: string): K8sObject {
  const o = find(objs, kind, name);
  if (!o) {
    const have = objs.map((x) => `${x.kind}/${x.metadata.name}`).join(', ');
    throw new Error(`no ${kind}${name ? `/${name}` : ''} rendered; have: ${have}`);
  }
  return o;
}

/** Source files (TypeScript) under the given repository folders, recursively. */
function sourceFiles(dirs: readonly string[]): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    let entries: string[];
    try {
      entries = readdirSync(dir);
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(dir, e);
      if (statSync(p).isDirectory()) walk(p);
      else if (e.endsWith('.ts')) out.push(p);
    }
  };
  for (const d of dirs) walk(path.join(REPO_ROOT, d));
  return out;
}

// prom-client's default metrics (event-loop lag, CPU, heap ...) carry the component prefix
// that common/ops-server.ts gives them: snowtap_<component>_<default name>.
function defaultMetricNames(): string[] {
  const dir = path.join(path.dirname(require.resolve('prom-client/package.json')), 'lib/metrics');
  const names: string[] = [];
  for (const f of readdirSync(dir)) {
    if (!f.endsWith('.js')) continue;
    for (const m of readFileSync(path.join(dir, f), 'utf8').matchAll(
      /['"]((?:nodejs|process)_[a-z0-9_]+)['"]/g,
    )) {
      names.push(m[1]!);
    }
  }
  return names;
}

const HISTOGRAM_SUFFIXES = ['_bucket', '_count', '_sum'];

/**
 * Whether `metric` (e.g. snowtap_enricher_rows_written_total or a histogram's _bucket series)
 * is defined by the product: its full name, or its name after the component prefix, appears as
 * a string (or template-literal tail) in that component's source, or it is one of prom-client's
 * default metrics.
 */
export function metricDefinedChecker(): (metric: string) => boolean {
  const sources = new Map<string, string>();
  for (const component of ['enricher', 'agent']) {
    const text = sourceFiles([component, 'common'])
      .map((f) => readFileSync(f, 'utf8'))
      .join('\n');
    sources.set(component, text);
  }
  const defaults = new Set(defaultMetricNames());
  return (metric: string) => {
    const m = /^snowtap_(enricher|agent)_([a-z0-9_]+)$/.exec(metric);
    if (!m) return false;
    const text = sources.get(m[1]!)!;
    const short = [m[2]!];
    for (const suffix of HISTOGRAM_SUFFIXES)
      if (m[2]!.endsWith(suffix)) short.push(m[2]!.slice(0, -suffix.length));
    // 'name', "name", `name` or the tail of a template literal such as `${prefix}name`.
    const literal = (name: string) => new RegExp(`['"\`}]${name}['"\`]`).test(text);
    return short.some((c) => defaults.has(c) || literal(c) || literal(`snowtap_${m[1]}_${c}`));
  };
}

/** Every snowtap_* metric name a PromQL expression mentions. */
export function metricsIn(expr: string): string[] {
  return [...expr.matchAll(/\bsnowtap_[a-z0-9_]+/g)].map((m) => m[0]);
}
