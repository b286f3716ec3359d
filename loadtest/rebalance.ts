// The rebalance scenario, Snowtap's central promise measured with real processes: agents hold
// long-lived TCP connections through a "Service" (haproxy as kube-proxy), and an enricher
// added later still gets its share of the records within a few switch intervals, because the
// agents keep re-opening their idle connection. With --switch-interval 0 it gets nothing.
//
//   2 enrichers ready -> agents + producers at a steady rate -> warm-up -> a 3rd enricher
//   added -> observe -> enricher 1 made NotReady, then SIGTERM (drain) -> producers stop ->
//   every agent fully acknowledged -> everything stopped -> CSV audit: nothing lost, no dups.
//
// Records/s per enricher come from snowtap_enricher_records_received_total{input="link"},
// scraped every second. Checks and figures are computed in rebalance-checks.ts.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort, metricSum, SnowtapProcess, scrape, waitHttpOk } from './cluster';
import { auditCsv } from './csv-audit';
import { Haproxy } from './haproxy';
import { DnstapProducer, type ProducerStats } from './producer';
import { evaluateRun, type RebalanceOptions, type RebalanceResult, type RunFacts } from './rebalance-checks';
import { type CounterSample, round, type TimelineEvent } from './report';
import { samplePolicy } from './synthetic';

export { REBALANCE_DEFAULTS, type RebalanceOptions, type RebalanceResult } from './rebalance-checks';

const START_TIMEOUT_MS = 20_000;
const SAMPLE_MS = 1000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Member {
  name: string;
  proc: SnowtapProcess;
  metricsPort: number;
  outputDir: string;
}

/** Runs the scenario once; never throws for a failed criterion (see result.ok), only for set-up errors. */
export async function runRebalance(o: RebalanceOptions): Promise<RebalanceResult> {
  const say = o.progress ?? (() => {});
  const work = mkdtempSync(path.join(o.workDir ?? tmpdir(), 'snowtap-rebalance-'));
  const total = o.enrichers + 1;
  const names = Array.from({ length: total }, (_, k) => `e${k + 1}`);
  const enrichers: (Member | null)[] = names.map(() => null);
  const agents: Member[] = [];
  const producers: DnstapProducer[] = [];
  const haproxy = new Haproxy({ port: await freePort(), slots: total, binary: o.haproxy });
  const policyFile = path.join(work, 'policy.json');
  writeFileSync(policyFile, JSON.stringify(samplePolicy()));
  const events: TimelineEvent[] = [];
  const samples: CounterSample[] = [];
  const switchSamples: CounterSample[] = [];
  let t0 = performance.now();
  const now = () => round((performance.now() - t0) / 1000, 2);
  const event = (what: string) => {
    events.push({ t: now(), what });
    say(`[${now().toFixed(1)}s] ${what}`);
  };

  const startEnricher = async (k: number): Promise<void> => {
    const name = names[k]!;
    const dir = path.join(work, name);
    mkdirSync(dir, { recursive: true });
    const [listen, metricsPort] = [await freePort(), await freePort()];
    const outputDir = path.join(dir, 'out');
    const args = [
      'enricher',
      '--listen',
      `127.0.0.1:${listen}`,
      '--metrics-listen',
      `127.0.0.1:${metricsPort}`,
    ];
    args.push('--output-dir', outputDir, '--id', name, '--policy-file', policyFile, '--rotate-max-age', '10');
    const proc = new SnowtapProcess(name, args, path.join(dir, 'log.jsonl'), o.main);
    enrichers[k] = { name, proc, metricsPort, outputDir };
    await waitHttpOk(metricsPort, '/readyz', START_TIMEOUT_MS, proc);
    await haproxy.addEndpoint(k + 1, listen);
  };

  const startAgent = async (k: number): Promise<void> => {
    const name = `agent-${k + 1}`;
    const metricsPort = await freePort();
    const socket = path.join(work, `${name}.sock`);
    const args = ['agent', '--dnstap-socket', socket, '--enricher', `127.0.0.1:${haproxy.port}`];
    args.push('--switch-interval', String(o.switchInterval), '--metrics-listen', `127.0.0.1:${metricsPort}`);
    args.push('--id', name);
    const proc = new SnowtapProcess(name, args, path.join(work, `${name}.log.jsonl`), o.main);
    agents[k] = { name, proc, metricsPort, outputDir: '' };
    await waitHttpOk(metricsPort, '/healthz', START_TIMEOUT_MS, proc);
    const p = new DnstapProducer({
      socket,
      rate: o.rate / o.agents,
      seed: k + 1,
      identity: `resolver-${k + 1}`,
    });
    producers[k] = p;
  };

  const read = async (members: readonly (Member | null)[], name: string, labels?: Record<string, string>) =>
    Promise.all(
      members.map(async (m) => {
        if (m === null || !m.proc.running) return null;
        try {
          return metricSum(await scrape(m.metricsPort), name, labels);
        } catch {
          return null;
        }
      }),
    );
  const sampleOnce = async () => {
    const t = now();
    const [counts, switches] = await Promise.all([
      read(enrichers, 'snowtap_enricher_records_received_total', { input: 'link' }),
      read(agents, 'snowtap_agent_link_switches_total'),
    ]);
    samples.push({ t, counts });
    switchSamples.push({ t, counts: switches });
  };
  let sampling = true;
  // Samples on whole seconds since the producers started (t0), until `sampling` is cleared.
  const sampleLoop = async () => {
    while (sampling) {
      const next = Math.ceil((performance.now() - t0) / SAMPLE_MS + 1e-6) * SAMPLE_MS;
      await sleep(next - (performance.now() - t0));
      if (sampling) await sampleOnce();
    }
  };
  let sampler: Promise<void> = Promise.resolve();

  let producerStats: ProducerStats[] = [];
  const exits: Record<string, number | string | null> = {};
  let settled = false;
  try {
    await haproxy.start();
    say(`work dir ${work}; haproxy pid ${haproxy.pid} on 127.0.0.1:${haproxy.port}`);
    await Promise.all(names.slice(0, o.enrichers).map((_, k) => startEnricher(k)));
    await Promise.all(Array.from({ length: o.agents }, (_, k) => startAgent(k)));
    t0 = performance.now();
    await Promise.all(producers.map((p) => p.start()));
    await sampleOnce();
    sampler = sampleLoop();
    event(`${o.enrichers} enrichers, ${o.agents} agents, ${o.rate} rec/s, switch ${o.switchInterval}s`);
    await sleep(o.warmup * 1000);
    await startEnricher(o.enrichers);
    event(`${names[o.enrichers]} added`);
    const addedAt = now();
    const [switches0, conns0] = await Promise.all([
      read(agents, 'snowtap_agent_link_switches_total'),
      haproxy.servers(),
    ]);
    await sleep(o.observe * 1000);
    const observeEnd = now();
    const conns1 = await haproxy.servers();
    // New connections per endpoint while observing: does the "Service" spread them evenly?
    const connectionsObserved = conns1.map((s, i) => s.connections - conns0[i]!.connections);
    await haproxy.removeEndpoint(1);
    event(`${names[0]} NotReady`);
    const exit = await enrichers[0]!.proc.stop('SIGTERM');
    exits[names[0]!] = exit.code ?? exit.signal;
    event(`${names[0]} exited (${exits[names[0]!]})`);
    const removedAt = now();
    await sleep(o.afterRemove * 1000);
    producerStats = await Promise.all(producers.map((p) => p.stop()));
    event('producers stopped');
    const producersStoppedAt = now();
    settled = await waitAgentsSettled(agents, producerStats, (o.settleTimeout ?? 30) * 1000);
    event(settled ? 'agents fully acknowledged' : 'agents NOT fully acknowledged');
    await sleep(SAMPLE_MS * 1.1);
    const agentDrops = await agentDropped(agents);
    sampling = false;
    await sampler;
    for (const m of [...agents, ...enrichers]) {
      if (m === null || !m.proc.running) continue;
      const e = await m.proc.stop('SIGTERM');
      exits[m.name] = e.code ?? e.signal;
    }
    const facts: RunFacts = {
      names,
      samples,
      events,
      addedAt,
      observeEnd,
      removedAt,
      producersStoppedAt,
      producers: producerStats,
      settled,
      firstSwitchAfterAdd: agents.map((_, a) => {
        const hit = switchSamples.find((x) => x.t > addedAt && (x.counts[a] ?? 0) > (switches0[a] ?? 0));
        return hit === undefined ? null : round(hit.t - addedAt, 2);
      }),
      agentDrops,
      exits,
      connectionsObserved,
      audit: auditCsv(enrichers.map((m) => m?.outputDir ?? path.join(work, 'missing'))),
      workDir: work,
    };
    const result = evaluateRun(o, facts);
    if (result.ok && !o.keep) rmSync(work, { recursive: true, force: true });
    else say(`logs and output kept in ${work}`);
    return result;
  } finally {
    sampling = false;
    for (const p of producers) if (p) await p.stop().catch(() => {});
    for (const m of [...agents, ...enrichers]) if (m?.proc.running) await m.proc.stop('SIGKILL', 1000);
    await haproxy.stop();
  }
}

/** True once every agent received all its producer sent and acknowledged or dropped all of it. */
async function waitAgentsSettled(
  agents: readonly Member[],
  sent: readonly ProducerStats[],
  timeoutMs: number,
) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const done = await Promise.all(
      agents.map(async (a, k) => {
        try {
          const m = await scrape(a.metricsPort);
          const inn = metricSum(m, 'snowtap_agent_records_in_total');
          const acked = metricSum(m, 'snowtap_agent_records_acked_total');
          const dropped = metricSum(m, 'snowtap_agent_records_dropped_total');
          return inn === sent[k]!.framesSent && acked + dropped >= inn;
        } catch {
          return false;
        }
      }),
    );
    if (done.every(Boolean)) return true;
    await sleep(200);
  }
  return false;
}

async function agentDropped(agents: readonly Member[]): Promise<number> {
  let n = 0;
  for (const a of agents) {
    try {
      n += metricSum(await scrape(a.metricsPort), 'snowtap_agent_records_dropped_total');
    } catch {
      // counted as unknown: the settle check already failed for this agent
    }
  }
  return n;
}
