// Real DNS servers -> real agent -> real enricher -> CSV. Each Debian producer answers a known
// number of queries from local data (dnsperf, unique names, a rate no producer drops at) with
// dnstap pointed at the agent's unix socket (and TCP where the producer can); the CSV must
// hold exactly one query row and one response row per query, and every record the agent
// received. Stopping the DNS server must not take longer than with no receiver at all.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { PRODUCER_NEEDS, type Producer, requireInterop, runProducer } from '../support/peers';
import {
  committedRows,
  exitWithin,
  freeTcpPort,
  metric,
  startAgent,
  startEnricher,
  tmpDir,
  waitUntil,
} from '../support/pipeline-procs';

const QUERIES = 600; // 3 s at 200 qps
const QPS = 200;
const NAME = /^u\d{7}\.w\.tap\.test$/;

// unique names under the wildcard: no cache hit hides upstream traffic (pdns logs only those)
function queryFile(dir: string): string {
  const f = path.join(dir, 'queries.txt');
  const lines: string[] = [];
  for (let i = 0; i < 200_000; i++) lines.push(`u${String(i).padStart(7, '0')}.w.tap.test A`);
  fs.writeFileSync(f, lines.join('\n') + '\n');
  return f;
}

const CASES: { producer: Producer; transport: 'unix' | 'tcp' }[] = [
  { producer: 'unbound', transport: 'unix' },
  { producer: 'bind', transport: 'unix' },
  { producer: 'knot', transport: 'unix' },
  { producer: 'kresd', transport: 'unix' },
  { producer: 'dnsdist', transport: 'unix' },
  { producer: 'pdns', transport: 'unix' },
  { producer: 'unbound', transport: 'tcp' },
  { producer: 'dnsdist', transport: 'tcp' },
  { producer: 'pdns', transport: 'tcp' },
];

for (const { producer, transport } of CASES) {
  test(`${producer} -> agent (${transport}) -> enricher: exactly the expected rows`, {
    timeout: 120_000,
  }, async (t) => {
    if (!requireInterop(t, [...PRODUCER_NEEDS[producer], 'dnsperf'])) return;
    const dir = tmpDir(t, `snowtap-live-${producer}-`);
    const qf = queryFile(dir);
    const enricher = await startEnricher(t, path.join(dir, 'out'));
    const sock = path.join(dir, 'dnstap.sock');
    const tcpPort = await freeTcpPort();
    const input = transport === 'unix' ? ['--dnstap-socket', sock] : ['--dnstap-tcp', `127.0.0.1:${tcpPort}`];
    const agent = await startAgent(t, [
      ...input,
      '--enricher',
      `127.0.0.1:${enricher.linkPort}`,
      '--switch-interval',
      '2',
    ]);
    await waitUntil(
      () =>
        transport === 'unix'
          ? fs.existsSync(sock)
          : metric(agent.metricsPort, 'snowtap_agent_records_in_total').then(() => true),
      'agent listening',
    );

    // Baseline: the same producer with nobody listening on its dnstap destination.
    const baseline = await runProducer({
      producer,
      dest:
        transport === 'unix'
          ? `unix:${path.join(dir, 'nobody.sock')}`
          : `tcp:127.0.0.1:${await freeTcpPort()}`,
      seconds: 0,
      qps: 0,
      env: { QUERY_FILE: qf },
    });
    assert.equal(baseline.code, 0, baseline.stderr);

    const run = await runProducer({
      producer,
      dest: transport === 'unix' ? `unix:${sock}` : `tcp:127.0.0.1:${tcpPort}`,
      seconds: QUERIES / QPS,
      qps: QPS,
      env: { QUERY_FILE: qf },
    });
    assert.equal(run.code, 0, run.stderr);
    const perf = run.dnsperf!;
    assert.ok(perf.sent >= QUERIES * 0.9, `dnsperf sent ${perf.sent}`);
    assert.equal(perf.lost, 0, 'no query lost at this rate');

    // Everything the agent received gets acknowledged, then both stop cleanly.
    const received = () => metric(agent.metricsPort, 'snowtap_agent_records_in_total');
    const acked = () => metric(agent.metricsPort, 'snowtap_agent_records_acked_total');
    await waitUntil(
      async () => (await received()) >= 2 * perf.sent && (await acked()) === (await received()),
      'all records acked',
      30_000,
    );
    const total = await received();
    agent.child.kill('SIGTERM');
    assert.equal(await exitWithin(agent, 15_000, 'agent'), 0);
    enricher.child.kill('SIGTERM');
    assert.equal(await exitWithin(enricher, 25_000, 'enricher'), 0);

    const rows = await committedRows(enricher.outputDir);
    assert.equal(rows.length, total, 'every record the agent received is a CSV row');
    const mine = rows.filter((r) => NAME.test(r.qname ?? ''));
    const queries = mine.filter((r) => r.message_type!.endsWith('_QUERY')).length;
    const responses = mine.filter((r) => r.message_type!.endsWith('_RESPONSE')).length;
    t.diagnostic(
      `${producer}/${transport}: ${perf.sent} queries, ${rows.length} rows (${queries} query + ${responses} response rows for the test names), ` +
        `stop ${run.stopMs} ms vs ${baseline.stopMs} ms without a receiver`,
    );
    assert.equal(queries, perf.sent, 'one query row per query');
    assert.equal(responses, perf.completed, 'one response row per answered query');
    assert.equal(new Set(rows.map((r) => r.record_id)).size, rows.length, 'no duplicate record_id');
    assert.ok(rows.every((r) => r.agent_id === 'agent-e2e' && r.enricher_id === 'enr-e2e'));
    assert.ok(run.stopMs !== undefined && baseline.stopMs !== undefined);
    assert.ok(
      run.stopMs <= baseline.stopMs + 1000,
      `stop took ${run.stopMs} ms with the agent, ${baseline.stopMs} ms without`,
    );
  });
}
