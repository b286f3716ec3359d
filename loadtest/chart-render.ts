// What the autoscale scenario takes from the chart, read from `helm template` output rather than
// restated: the KEDA ScaledObject (triggers with their queries verbatim, min/max, fallback, HPA
// behavior), the scrape interval of the chart's ServiceMonitor/PodMonitor, and the enricher
// Deployment's pod labels, readiness period, preStop sleep and termination grace period.
// helm is found as HELM_BIN, then .tools/bin/helm of the checkout (scripts/ci/get-helm.sh), then PATH.

import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { BedError } from './bed-errors';

const REPO_ROOT = path.resolve(__dirname, '../..');
export const CHART_DIR = path.join(REPO_ROOT, 'helm/snowtap');
/** A Kubernetes version that renders the preStop sleep action (>= 1.30). */
const KUBE_VERSION = '1.31.0';

// biome-ignore lint/suspicious/noExplicitAny: rendered manifests are walked by known paths
type Obj = Record<string, any>;

export interface ChartFacts {
  /** The ScaledObject as rendered (feed it to hpaOptionsFromScaledObject). */
  scaledObject: Obj;
  /** The ServiceMonitor's endpoint interval (s): the chart's default scrape interval. */
  scrapeIntervalSeconds: number;
  /** `rate(...[W])` window of the rendered queries (s), the largest if they differ. */
  rateWindowSeconds: number;
  podLabels: Record<string, string>;
  podAnnotations: Record<string, string>;
  readinessPeriodSeconds: number;
  preStopSleepSeconds: number;
  terminationGracePeriodSeconds: number;
  /** The address agents are given (--enricher=...), which the queries select on. */
  enricherAddress: string;
  /** The sidecar's --discovery=k8s://NS/SERVICE target (agent.discovery), or null without it. */
  agentDiscovery: string | null;
  /** helm --set assignments used, for the report. */
  set: readonly string[];
}

export function findHelm(): string | null {
  const candidates = [process.env.HELM_BIN, path.join(REPO_ROOT, '.tools/bin/helm')];
  for (const dir of (process.env.PATH ?? '').split(path.delimiter))
    if (dir) candidates.push(path.join(dir, 'helm'));
  for (const c of candidates) {
    if (!c) continue;
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // next
    }
  }
  return null;
}

// The chart's schema types thresholds as strings (KEDA metadata): those go through --set-string.
const STRING_VALUE = /(^|\.)(threshold|activationThreshold)=/;

function helmTemplate(helm: string, set: readonly string[]): Promise<Obj[]> {
  const args = ['template', 'snowtap', CHART_DIR, '--namespace', 'snowtap', '--kube-version', KUBE_VERSION];
  args.push('--api-versions', 'keda.sh/v1alpha1', '--api-versions', 'monitoring.coreos.com/v1');
  for (const s of set) args.push(STRING_VALUE.test(s) ? '--set-string' : '--set', s);
  return new Promise((resolve, reject) => {
    execFile(helm, args, { maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) {
        reject(new BedError('BED_COMMAND_FAILED', `helm template: ${stderr.trim() || err.message}`));
        return;
      }
      const docs = YAML.parseAllDocuments(stdout)
        .map((d) => d.toJS({ maxAliasCount: -1 }) as Obj | null)
        .filter((d): d is Obj => d !== null && typeof d === 'object');
      resolve(docs);
    });
  });
}

/** Go duration ("30s", "2m", "1m30s") in seconds. */
export function durationSeconds(s: string): number {
  let total = 0;
  let rest = s.trim();
  const unit: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600 };
  while (rest !== '') {
    const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)/.exec(rest);
    if (!m) throw new BedError('BED_INVALID_ARGUMENT', `not a duration: '${s}'`);
    total += Number(m[1]) * unit[m[2]!]!;
    rest = rest.slice(m[0].length);
  }
  return total;
}

/** Renders the chart (default values plus `set`) with KEDA and the prometheus-operator CRDs served. */
export async function renderChart(helm: string, set: readonly string[] = []): Promise<ChartFacts> {
  const objs = await helmTemplate(helm, [
    'metrics.serviceMonitor.enabled=true',
    'metrics.podMonitor.enabled=true',
    'examples.resolver.enabled=true',
    ...set,
  ]);
  const get = (kind: string, name: string) => {
    const o = objs.find((x) => x.kind === kind && x.metadata?.name === name);
    if (!o) throw new BedError('BED_INVALID_ARGUMENT', `the chart rendered no ${kind}/${name}`);
    return o;
  };
  const so = get('ScaledObject', 'snowtap-enricher');
  const sm = get('ServiceMonitor', 'snowtap-enricher');
  const dep = get('Deployment', 'snowtap-enricher');
  const resolver = get('Deployment', 'snowtap-resolver');
  const tpl = dep.spec.template;
  const c = (tpl.spec.containers as Obj[]).find((x) => x.name === 'enricher');
  if (!c) throw new BedError('BED_INVALID_ARGUMENT', 'no enricher container in the Deployment');
  const agentC = [
    ...(resolver.spec.template.spec.initContainers ?? []),
    ...resolver.spec.template.spec.containers,
  ].find((x: Obj) => x.name === 'snowtap-agent') as Obj | undefined;
  const enricherArg = (agentC?.args as string[] | undefined)?.find((a) => a.startsWith('--enricher='));
  if (!enricherArg) throw new BedError('BED_INVALID_ARGUMENT', 'no --enricher= in the agent sidecar');
  const windows = (so.spec.triggers as Obj[]).flatMap((t) =>
    [...String(t.metadata.query).matchAll(/\[(\d+[smh])\]/g)].map((m) => durationSeconds(m[1]!)),
  );
  return {
    scaledObject: so,
    scrapeIntervalSeconds: durationSeconds(String(sm.spec.endpoints[0].interval)),
    rateWindowSeconds: windows.length > 0 ? Math.max(...windows) : 0,
    podLabels: tpl.metadata.labels ?? {},
    podAnnotations: tpl.metadata.annotations ?? {},
    readinessPeriodSeconds: Number(c.readinessProbe?.periodSeconds ?? 10),
    preStopSleepSeconds: Number(c.lifecycle?.preStop?.sleep?.seconds ?? 0),
    terminationGracePeriodSeconds: Number(tpl.spec.terminationGracePeriodSeconds ?? 30),
    enricherAddress: enricherArg.slice('--enricher='.length),
    agentDiscovery:
      (agentC?.args as string[] | undefined)
        ?.find((a) => a.startsWith('--discovery='))
        ?.slice('--discovery='.length) ?? null,
    set,
  };
}
