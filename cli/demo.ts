// `snowtap demo`: the whole pipeline on one machine with embedded defaults. A synthetic
// resolver sends realistic dnstap (loadtest/synthetic.ts) over Frame Streams to an agent's
// unix socket; the agent relays it over the acknowledged two-connection link to an enricher
// that enriches it with the bundled sample policy and writes CSV chunks. Then a summary.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseFile } from 'fast-csv';
import { Agent } from '../agent/index';
import { createLogger } from '../common/log';
import { Enricher } from '../enricher/enricher';
import { DnstapProducer } from '../loadtest/producer';
import { samplePolicy } from '../loadtest/synthetic';
import { formatHelp, logSettings, type OptionSpec, parseCommand } from './options';

const DEMO_OPTIONS: readonly OptionSpec[] = [
  {
    name: 'duration',
    kind: 'number',
    default: 10,
    min: 1,
    max: 3600,
    arg: 'SECONDS',
    help: 'how long the synthetic resolver sends',
  },
  {
    name: 'rate',
    kind: 'int',
    default: 20_000,
    min: 1,
    max: 2_000_000,
    arg: 'RECORDS_PER_S',
    help: 'dnstap records per second',
  },
  {
    name: 'output-dir',
    kind: 'string',
    default: './snowtap-out/demo',
    arg: 'DIR',
    help: 'where the CSV chunks go',
  },
  {
    name: 'switch-interval',
    kind: 'number',
    default: 3,
    min: 0,
    arg: 'SECONDS',
    help: "agent's connection switch interval",
  },
  {
    name: 'rotate-max-age',
    kind: 'number',
    default: 3,
    min: 0.1,
    arg: 'SECONDS',
    help: 'commit a chunk this long after its first row',
  },
  { name: 'gzip', kind: 'bool', default: false, help: 'gzip the chunks' },
];

export const DEMO_HELP = formatHelp(
  'snowtap demo [options]',
  'Run a synthetic resolver -> agent -> enricher on this machine, then print a summary.',
  DEMO_OPTIONS,
);

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const pct = (n: number, d: number) => (d > 0 ? `${((100 * n) / d).toFixed(1)} %` : '-');

/** Committed chunks (not _partial/) written since `since` (ms): this run's, in a reused directory. */
function chunksSince(dir: string, since: number): string[] {
  const found: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) {
        if (e.name !== '_partial') walk(p);
      } else if (/\.csv(\.gz)?$/.test(e.name) && statSync(p).mtimeMs >= since) found.push(p);
    }
  };
  walk(dir);
  return found.sort();
}

/** Per-column tallies over the committed CSV, read back with fast-csv (proves it parses). */
async function tally(files: string[]): Promise<{ rows: number; by: Record<string, Map<string, number>> }> {
  const cols = ['message_type', 'policy_category', 'tenant', 'qtype', 'rcode'];
  const by: Record<string, Map<string, number>> = Object.fromEntries(cols.map((c) => [c, new Map()]));
  let rows = 0;
  for (const f of files) {
    await new Promise<void>((resolve, reject) => {
      parseFile(f, { headers: true })
        .on('error', reject)
        .on('data', (r: Record<string, string>) => {
          rows++;
          for (const c of cols) {
            const v = r[c] || '(none)';
            by[c]!.set(v, (by[c]!.get(v) ?? 0) + 1);
          }
        })
        .on('end', () => resolve());
    });
  }
  return { rows, by };
}

function top(m: Map<string, number>, total: number, n = 5): string {
  return [...m.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, v]) => `${k} ${pct(v, total)}`)
    .join(', ');
}

export async function demoMain(argv: readonly string[]): Promise<number> {
  const cmd = parseCommand(argv, DEMO_OPTIONS);
  if (cmd.help) {
    process.stdout.write(DEMO_HELP);
    return 0;
  }
  const o = cmd.options;
  const outputDir = path.resolve(String(o['output-dir']));
  const duration = Number(o.duration);
  const rate = Number(o.rate);
  mkdirSync(outputDir, { recursive: true });
  const work = mkdtempSync(path.join(tmpdir(), 'snowtap-demo-'));
  const policyFile = path.join(work, 'policy.json');
  writeFileSync(policyFile, JSON.stringify(samplePolicy(), null, 2));
  const sock = path.join(work, 'dnstap.sock');
  // Components log at warn so the summary stays readable; --log-level info shows everything.
  const logging = logSettings(o, 'warn');
  const startedAt = Date.now() - 1000;

  const enricher = new Enricher({
    id: 'demo-enricher',
    output: { outputDir, maxAgeMs: Number(o['rotate-max-age']) * 1000, gzip: Boolean(o.gzip) },
    listen: { host: '127.0.0.1', port: 0 },
    metricsListen: { host: '127.0.0.1', port: 0 },
    policy: { file: policyFile },
    drainTimeoutMs: 5000,
    log: createLogger('enricher', logging),
  });
  const addr = await enricher.start();
  const agent = new Agent({
    id: 'demo-agent',
    dnstapSocket: sock,
    enrichers: [{ host: '127.0.0.1', port: addr.link }],
    switchIntervalMs: Number(o['switch-interval']) * 1000,
    drainTimeoutMs: 10_000,
    log: createLogger('agent', logging),
  });
  await agent.start();
  const producer = new DnstapProducer({ socket: sock, rate, identity: 'demo-resolver-1' });
  const out = process.stdout;
  out.write(
    `snowtap demo: synthetic resolver -> agent (unix socket) -> enricher (127.0.0.1:${addr.link}) -> CSV\n` +
      `  sending ${fmt(rate)} dnstap records/s for ${duration} s; enricher metrics at http://127.0.0.1:${addr.metrics}/metrics\n`,
  );
  const started = Date.now();
  await producer.start();
  const tick = setInterval(() => {
    const w = enricher.writer?.stats();
    const line =
      `  t=${((Date.now() - started) / 1000).toFixed(0).padStart(3)} s  sent ${fmt(producer.stats.framesSent)}  ` +
      `agent in ${fmt(agent.counters.recordsIn)}  acked ${fmt(agent.client.stats.recordsAcked)}  ` +
      `chunks ${w?.chunksCommitted ?? 0}  switches ${agent.client.stats.switches}`;
    out.write(out.isTTY ? `\r${line}\x1b[K` : `${line}\n`);
  }, 1000);
  await new Promise((r) => setTimeout(r, duration * 1000));
  const sent = await producer.stop();
  // Everything the agent received is acknowledged before anything stops: nothing is lost.
  const deadline = Date.now() + 30_000;
  while (agent.client.stats.recordsAcked < agent.counters.recordsIn && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
  }
  clearInterval(tick);
  if (out.isTTY) out.write('\n');
  const elapsed = (Date.now() - started) / 1000;
  const linkStats = { ...agent.client.stats };
  const agentIn = agent.counters.recordsIn;
  await agent.stop();
  await enricher.stop('demo finished');
  const w = enricher.writer?.stats();
  const files = chunksSince(outputDir, startedAt);
  const t = await tally(files);
  rmSync(work, { recursive: true, force: true });

  out.write(
    `\nsummary\n` +
      `  records: ${fmt(sent.framesSent)} sent by the resolver, ${fmt(agentIn)} received by the agent, ` +
      `${fmt(linkStats.recordsAcked)} acknowledged, ${fmt(t.rows)} CSV rows (${fmt(t.rows / elapsed)} records/s)\n` +
      `  link: ${linkStats.switches} connection switches, ${linkStats.batchesAcked ?? '?'} batches acknowledged\n` +
      `  files: ${files.length} CSV chunk(s), ${fmt((w?.bytesWritten ?? 0) / 1024)} KiB, under ${outputDir}\n` +
      `  message types: ${top(t.by.message_type!, t.rows)}\n` +
      `  policy categories: ${top(t.by.policy_category!, t.rows, 7)}\n` +
      `  tenants: ${top(t.by.tenant!, t.rows)}\n` +
      `  qtypes: ${top(t.by.qtype!, t.rows)}; rcodes: ${top(t.by.rcode!, t.rows, 4)}\n` +
      (files.length > 0 ? `  newest chunk: ${files[files.length - 1]}\n` : '') +
      `  load it: sql/account/ then sql/schema/ (Snowflake), or DuckDB: SELECT * FROM read_csv('${outputDir}/**/*.csv*')\n`,
  );
  const ok = t.rows === agentIn && agentIn > 0;
  if (!ok) out.write(`demo: expected ${fmt(agentIn)} rows, found ${fmt(t.rows)}\n`);
  return ok ? 0 : 1;
}
