// Rolling upgrades (issue 10): the previous version — the first-wave commit, built from this
// repository's history (test/support/previous-version.ts, cached by commit hash) — and this
// version in one pipeline under load, the way a fleet upgrades: enrichers first, one by one,
// while sidecar agents of both versions send; then an agent is replaced by the new version on
// the same spool directory (what the old one spooled at SIGTERM is re-sent by the new one);
// then one enricher is rolled back to the old version. Every record is audited by record_id
// (0 lost, duplicates only from re-sent or spooled batches), every link connection in both
// directions negotiated protocol version 1, and a Hello outside the supported range gets
// Reject BAD_VERSION naming both ranges from either version. Needs git and the full history
// (a shallow clone lacks the commit): skipped, or FAILS under SNOWTAP_REQUIRE_INTEROP=1.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { before, type TestContext, test } from 'node:test';
import { auditCsv } from '../../loadtest/csv-audit';
import { DnstapProducer, type ProducerStats } from '../../loadtest/producer';
import { MIN_PROTOCOL_VERSION, PROTOCOL_VERSION, RejectCode } from '../../proto/link/constants';
import { interopMissing } from '../support/interop';
import { TestAgent } from '../support/link-client';
import {
  exitWithin,
  freeTcpPort,
  MAIN,
  metric,
  type Proc,
  startSnowtap,
  tmpDir,
  waitReady,
  waitUntil,
} from '../support/pipeline-procs';
import {
  buildPrevious,
  FIRST_WAVE_COMMIT,
  type PreviousBuild,
  previousVersionMissing,
} from '../support/previous-version';

const RATE = 3000; // records/s per producer (two at a time): load, not saturation, on 2 cores
const BATCH = 1000;
const PHASE_MS = 5000;

type Version = 'old' | 'new';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Enricher {
  name: string;
  version: Version;
  proc: Proc;
  linkPort: number;
  dir: string;
}

interface Agent {
  name: string;
  version: Version;
  proc: Proc;
  socket: string;
}

function jsonLines(text: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // a line cut by the exit
    }
  }
  return out;
}

async function stopProc(p: Proc, what: string): Promise<number | null> {
  p.child.kill('SIGTERM');
  return exitWithin(p, 40_000, what);
}

async function probeVersion(
  port: number,
): Promise<{ code: number; message: string; min: number; max: number }> {
  const a = await TestAgent.connect({
    port,
    minVersion: PROTOCOL_VERSION + 1,
    maxVersion: PROTOCOL_VERSION + 2,
  });
  try {
    assert.equal(await a.answer(), 'reject');
    const r = a.reject!;
    return { code: r.code, message: r.message, min: r.supportedMinVersion, max: r.supportedMaxVersion };
  } finally {
    a.destroy();
  }
}

// The previous version is built once for both tests (about 15 s on an idle 2-core machine; a
// second run takes it from the cache).
let prev: PreviousBuild | null = null;
let missing: string | null = null;
before(
  async () => {
    missing = await previousVersionMissing();
    if (missing === null) prev = await buildPrevious();
  },
  { timeout: 180_000 },
);

test(`rolling upgrade under load between the first-wave build (${FIRST_WAVE_COMMIT.slice(0, 7)}) and this one: 0 lost, version 1 negotiated both ways`, {
  timeout: 170_000,
}, async (t: TestContext) => {
  if (missing !== null || prev === null) return void interopMissing(t, missing ?? 'no previous build');
  t.diagnostic(
    `previous version ${prev.commit.slice(0, 12)} at ${prev.dir} (${prev.buildSeconds > 0 ? `built in ${prev.buildSeconds.toFixed(1)} s` : 'cached'})`,
  );
  const oldMain = prev.main;
  const mainOf = (v: Version) => (v === 'old' ? oldMain : MAIN);
  const dir = tmpDir(t, 'snowtap-upgrade-');
  const logs: { name: string; version: Version; log: () => string }[] = [];

  const startEnricher = async (name: string, version: Version, linkPort: number, metricsPort: number) => {
    const out = path.join(dir, `out-${name}`);
    const proc = startSnowtap(
      t,
      [
        'enricher',
        '--listen',
        `127.0.0.1:${linkPort}`,
        '--metrics-listen',
        `127.0.0.1:${metricsPort}`,
        '--output-dir',
        out,
        '--id',
        `${name}-${version}`,
        '--rotate-max-age',
        '1',
        '--drain-timeout',
        '5',
      ],
      metricsPort,
      {},
      mainOf(version),
    );
    logs.push({ name: `enricher ${name} (${version})`, version, log: proc.log });
    await waitReady(metricsPort);
    return { name, version, proc, linkPort, dir: out } satisfies Enricher;
  };
  const enrichers: Record<string, Enricher> = {};
  for (const name of ['a', 'b'])
    enrichers[name] = await startEnricher(name, 'old', await freeTcpPort(), await freeTcpPort());
  const roll = async (name: string, to: Version) => {
    const e = enrichers[name]!;
    assert.equal(await stopProc(e.proc, `enricher ${name} (${e.version})`), 0, `enricher ${name} exit code`);
    enrichers[name] = await startEnricher(name, to, e.linkPort, e.proc.metricsPort);
  };
  const enricherList = Object.values(enrichers)
    .map((e) => `127.0.0.1:${e.linkPort}`)
    .join(',');

  const startAgent = async (name: string, version: Version): Promise<Agent> => {
    const socket = path.join(dir, `${name}.sock`);
    const metricsPort = await freeTcpPort();
    const proc = startSnowtap(
      t,
      [
        'agent',
        '--id',
        `upgrade-${name}`,
        '--metrics-listen',
        `127.0.0.1:${metricsPort}`,
        '--dnstap-socket',
        socket,
        '--enricher',
        enricherList,
        '--switch-interval',
        '1',
        '--spool-dir',
        path.join(dir, `spool-${name}`),
        '--batch-records',
        String(BATCH),
        '--drain-timeout',
        '1',
      ],
      metricsPort,
      {},
      mainOf(version),
    );
    logs.push({ name: `agent ${name} (${version})`, version, log: proc.log });
    await waitReady(metricsPort);
    return { name, version, proc, socket };
  };
  const produce = async (a: Agent, seed: number) => {
    const p = new DnstapProducer({ socket: a.socket, rate: RATE, seed, identity: `dns-${a.name}` });
    await p.start();
    return p;
  };
  const counts = async (a: Agent) => {
    const m = (n: string) => metric(a.proc.metricsPort, `snowtap_agent_${n}`);
    return {
      in: await m('records_in_total'),
      acked: await m('records_acked_total'),
      dropped: await m('records_dropped_total'),
      resent: await m('batches_resent_total'),
    };
  };

  // Phase 0: old enrichers; agent x old, agent y new (a new agent against old enrichers).
  const x = await startAgent('x', 'old');
  const y = await startAgent('y', 'new');
  const px = await produce(x, 1);
  const py = await produce(y, 2);
  const sent: ProducerStats[] = [];
  let dropped = 0;
  let resentOrSpooled = 0;
  await sleep(PHASE_MS);
  // Phase 1-2: enrichers upgraded one at a time (old agent against new enrichers, mixed fleet).
  await roll('a', 'new');
  await sleep(PHASE_MS);
  await roll('b', 'new');
  await sleep(PHASE_MS);

  // Phase 3: agent x replaced by the new version on the same spool. Its enrichers are paused
  // so that what the old agent holds at SIGTERM is spooled, and the new one re-sends it.
  for (const e of Object.values(enrichers)) e.proc.child.kill('SIGSTOP');
  let xCode: number | null;
  let xOld: Awaited<ReturnType<typeof counts>>;
  try {
    await sleep(500); // batches pile up unacknowledged
    sent.push(await px.stop());
    await waitUntil(
      async () => (await counts(x)).in === sent[0]!.framesSent,
      'agent x (old) read every frame',
    );
    xOld = await counts(x);
    xCode = await stopProc(x.proc, 'agent x (old)');
  } finally {
    for (const e of Object.values(enrichers)) e.proc.child.kill('SIGCONT');
  }
  assert.equal(xCode, 0, 'old agent exit code');
  const stopped = jsonLines(x.proc.log()).find((l) => l.msg === 'agent stopped');
  assert.ok(stopped, `old agent logged its stop:\n${x.proc.log().slice(-2000)}`);
  const spooled = Number(stopped.spooled);
  assert.ok(
    spooled > 0,
    `the old agent spooled what was unacknowledged at SIGTERM (${JSON.stringify(stopped)})`,
  );
  dropped += xOld.dropped + Number(stopped.lost ?? 0);
  resentOrSpooled += xOld.resent * BATCH + spooled;
  const spoolFiles = readdirSync(path.join(dir, 'spool-x')).filter((f) => !f.endsWith('.tmp')).length;
  const x2 = await startAgent('x', 'new');
  const leftovers = jsonLines(x2.proc.log()).find(
    (l) => l.msg === 'spool: re-sending leftover batches first',
  );
  assert.ok(leftovers, 'the new agent found the old one spool');
  assert.equal(Number(leftovers.batches), spoolFiles, 'every spooled batch of the old agent is picked up');
  const px2 = await produce(x2, 3);
  await sleep(PHASE_MS);

  // Phase 4: a rollback: enricher b goes back to the old version; new agents send to it.
  await roll('b', 'old');
  await sleep(PHASE_MS);

  sent.push(await px2.stop(), await py.stop());
  for (const s of sent) {
    assert.equal(s.error, null, 'producer error');
    assert.ok(s.finished, 'producer got FINISH');
  }
  const frames = sent.reduce((n, s) => n + s.framesSent, 0);
  const agents = [x2, y];
  const expectIn = [sent[1]!.framesSent, sent[2]!.framesSent];
  for (const [i, a] of agents.entries())
    await waitUntil(
      async () => (await counts(a)).in === expectIn[i],
      `agent ${a.name}: every frame in`,
      30_000,
    );
  // Everything acknowledged: nothing waiting (memory or spool) and nothing in flight. (The new
  // x also acknowledges the old incarnation's spooled records, which its records_in never saw.)
  const idle = async (a: Agent) => {
    const m = (n: string) => metric(a.proc.metricsPort, `snowtap_agent_${n}`);
    const c = await counts(a);
    return (
      c.acked + c.dropped >= c.in &&
      (await m('buffer_batches')) === 0 &&
      (await m('in_flight_batches')) === 0 &&
      (await m('spool_files')) === 0
    );
  };
  for (const a of agents)
    await waitUntil(() => idle(a), `agent ${a.name}: everything acknowledged`, 60_000).catch(async (err) => {
      const text = await (await fetch(`http://127.0.0.1:${a.proc.metricsPort}/metrics`)).text();
      const lines = text
        .split('\n')
        .filter((l) => /^snowtap_agent_(records|buffer|in_flight|spool|backlog|batches)/.test(l));
      throw new Error(`${(err as Error).message}\n${lines.join('\n')}`);
    });
  for (const a of agents) {
    const c = await counts(a);
    dropped += c.dropped;
    resentOrSpooled += c.resent * BATCH;
  }
  for (const a of agents)
    assert.equal(await stopProc(a.proc, `agent ${a.name}`), 0, `agent ${a.name} exit code`);
  for (const e of Object.values(enrichers))
    assert.equal(await stopProc(e.proc, `enricher ${e.name}`), 0, `enricher ${e.name} exit code`);

  // Every record by record_id: nothing lost, duplicates only from re-sent or spooled batches.
  const audit = auditCsv(Object.values(enrichers).map((e) => e.dir));
  const distinct = audit.rows - audit.duplicates;
  t.diagnostic(
    `frames sent ${frames} (x old ${sent[0]!.framesSent}, x new ${sent[1]!.framesSent}, y ${sent[2]!.framesSent}); rows ${audit.rows}, distinct ${distinct}, duplicates ${audit.duplicates}; dropped ${dropped}; old agent spooled ${spooled} records in ${spoolFiles} files`,
  );
  assert.equal(audit.badIds, 0, 'every row has a well-formed record_id');
  assert.equal(audit.partialFiles, 0, 'no partial chunk left');
  assert.equal(dropped, 0, 'dropped');
  assert.equal(distinct, frames, 'distinct records delivered = frames sent (0 lost)');
  assert.ok(
    audit.duplicates <= resentOrSpooled,
    `duplicates ${audit.duplicates} within re-sent/spooled records ${resentOrSpooled}`,
  );

  // Version negotiation: every connection in every direction agreed on version 1, and every
  // pairing of versions happened.
  const incarnationOf = new Map<string, Version>();
  for (const l of logs.filter((x) => x.name.startsWith('agent')))
    for (const line of jsonLines(l.log()))
      if (line.msg === 'agent started') incarnationOf.set(String(line.incarnation), l.version);
  const pairs = new Set<string>();
  for (const l of logs.filter((x) => x.name.startsWith('enricher'))) {
    for (const line of jsonLines(l.log())) {
      if (line.msg !== 'link connection open') continue;
      assert.equal(line.version, 1, `${l.name}: ${JSON.stringify(line)}`);
      const agentVersion = incarnationOf.get(String(line.incarnation));
      assert.ok(agentVersion, `an incarnation of ours: ${JSON.stringify(line)}`);
      pairs.add(`${agentVersion} agent -> ${l.version} enricher`);
    }
  }
  t.diagnostic(`pairings seen: ${[...pairs].sort().join(', ')}`);
  // The new agents log the version they agreed on with each connection they use.
  for (const l of logs.filter((x) => x.name.startsWith('agent') && x.version === 'new')) {
    const used = jsonLines(l.log()).filter(
      (line) => line.msg === 'link connection active' || line.msg === 'switched to a new link connection',
    );
    assert.ok(used.length > 0, `${l.name} used a connection`);
    for (const line of used) assert.equal(line.version, 1, `${l.name}: ${JSON.stringify(line)}`);
  }
  for (const p of [
    'old agent -> old enricher',
    'old agent -> new enricher',
    'new agent -> old enricher',
    'new agent -> new enricher',
  ])
    assert.ok(pairs.has(p), `${p} (seen: ${[...pairs].join(', ')})`);
});

test('a Hello outside the supported range: both versions answer BAD_VERSION with their range and the agent range', {
  timeout: 60_000,
}, async (t: TestContext) => {
  if (missing !== null || prev === null) return void interopMissing(t, missing ?? 'no previous build');
  const dir = tmpDir(t, 'snowtap-upgrade-v-');
  for (const [version, main] of [
    ['old', prev.main],
    ['new', MAIN],
  ] as const) {
    const linkPort = await freeTcpPort();
    const metricsPort = await freeTcpPort();
    const e = startSnowtap(
      t,
      [
        'enricher',
        '--listen',
        `127.0.0.1:${linkPort}`,
        '--metrics-listen',
        `127.0.0.1:${metricsPort}`,
        '--output-dir',
        path.join(dir, version),
        '--id',
        `v-${version}`,
      ],
      metricsPort,
      {},
      main,
    );
    await waitReady(metricsPort);
    const r = await probeVersion(linkPort);
    assert.equal(r.code, RejectCode.BAD_VERSION, `${version}: ${JSON.stringify(r)}`);
    assert.deepEqual([r.min, r.max], [MIN_PROTOCOL_VERSION, PROTOCOL_VERSION], `${version} enricher's range`);
    assert.match(
      r.message,
      new RegExp(
        `agent speaks versions ${PROTOCOL_VERSION + 1}\\.\\.${PROTOCOL_VERSION + 2}, this enricher 1\\.\\.1`,
      ),
    );
    const logged = jsonLines(e.log()).find((l) => l.msg === 'link connection rejected');
    assert.equal(logged?.code, 'BAD_VERSION', `${version} enricher logs the refusal`);
    assert.equal(await stopProc(e, `${version} enricher`), 0);
  }
});
