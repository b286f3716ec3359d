// Drain on overload end to end (issue 7 step 2, LINK.md "Lifecycle" 6): two real enrichers,
// real agents that know both addresses. Enricher A reports a saturated event loop (its
// utilisation source is replaced: one process cannot saturate one of two in-process event
// loops), B a quiet one. A asks a bounded share of its agents to move with Drain{overload};
// they carry on on B make-before-break, each asked once within the cooldown; every record
// ends up in a CSV row (0 lost), duplicates only from re-sent batches.

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, test } from 'node:test';
import type { Agent } from '../../agent';
import { makeAgent, Producer, sleep, stopAll, waitFor } from '../support/agent-harness';
import { committedRows, startEnricher, tmpDir } from '../support/enricher-helpers';
import { fixtureRecords } from '../support/link-client';

const RECORDS = fixtureRecords();
const AGENTS = 4;
const BATCH = 200;

after(() => stopAll());

test('an overloaded enricher moves a bounded share of its agents to another; 0 lost', async (t) => {
  const overload = {
    high: 0.9,
    low: 0.7,
    enterMs: 1000,
    leaveMs: 1000,
    fraction: 0.25,
    intervalMs: 1000,
    cooldownMs: 60_000,
  };
  const a = await startEnricher(t, { id: 'enr-hot', link: { overload, utilisation: () => 1 } });
  const b = await startEnricher(t, { id: 'enr-cool', link: { overload, utilisation: () => 0.1 } });
  const dir = tmpDir(t, 'snowtap-overload-');
  const agents: Agent[] = [];
  for (let i = 0; i < AGENTS; i++) {
    // A first in the list: every agent's first (active) connection is on A, its standby on B.
    const agent = makeAgent(
      { port: a.port },
      {
        id: `agent-${i}`,
        dnstapSocket: path.join(dir, `a${i}.sock`),
        enrichers: [
          { host: '127.0.0.1', port: a.port },
          { host: '127.0.0.1', port: b.port },
        ],
        batchRecords: BATCH,
        retireTimeoutMs: 5_000,
      },
    );
    await agent.start();
    agents.push(agent);
  }
  await waitFor(() => agents.every((x) => x.client.standby !== null), 'active and standby everywhere');
  const producers = await Promise.all(agents.map((x) => Producer.open(x.options.dnstapSocket!)));
  // Traffic until the hot enricher (overloaded after its first whole second) has asked two
  // agents to move, one per 1 s round, and 1 s more; at most 15 s.
  let sent = 0;
  const hot = a.enricher.link!;
  const overloadDrains = () => hot.stats.drainsByReason.get('overload') ?? 0;
  const until = Date.now() + 15_000;
  let enough = 0;
  while (Date.now() < until && (enough === 0 || Date.now() < enough)) {
    if (enough === 0 && overloadDrains() >= 2) enough = Date.now() + 1_000;
    for (const p of producers) {
      const chunk = RECORDS.slice(sent % RECORDS.length, (sent % RECORDS.length) + 100);
      await p.send(chunk.length === 100 ? chunk : RECORDS.slice(0, 100));
    }
    sent += 100;
    await sleep(20);
  }
  await Promise.all(producers.map((p) => p.stop()));
  const total = sent * AGENTS;
  await waitFor(
    () => agents.reduce((n, x) => n + x.client.stats.recordsAcked, 0) >= total,
    () =>
      `all ${total} records acknowledged (${agents.reduce((n, x) => n + x.client.stats.recordsAcked, 0)})`,
    30_000,
  );

  const drains = overloadDrains();
  assert.equal(hot.overload.state, 'overloaded');
  assert.equal(b.enricher.link!.overload.state, 'normal');
  assert.equal(b.enricher.link!.stats.drainsByReason.get('overload') ?? 0, 0);
  // Rate limit: ceil(0.25 x 4) = 1 per 1 s round, each agent once per cooldown.
  assert.ok(drains >= 2 && drains <= AGENTS, `overload drains: ${drains}`);
  const asked = a.lines.filter((l) => l.msg === 'overloaded: asked agents to move');
  assert.ok(
    asked.every((l) => (l.agents as string[]).length === 1),
    'one agent per round',
  );
  const names = asked.flatMap((l) => l.agents as string[]);
  assert.equal(new Set(names).size, names.length, `no agent asked twice: ${names}`);
  const movedDrains = agents.reduce((n, x) => n + x.client.stats.drains, 0);
  assert.equal(movedDrains, drains, 'every Drain reached its agent');
  for (const x of agents) {
    if (x.client.stats.drains > 0)
      assert.equal(
        x.client.active?.agreed?.enricherId,
        'enr-cool',
        `${x.options.id} moved to the cool enricher`,
      );
  }
  assert.ok(b.enricher.link!.stats.batchesReceived > 0, 'the cool enricher got traffic');
  assert.ok(a.lines.some((l) => l.msg === 'enricher overloaded'));

  // 0 lost: every record of every agent is a row in one of the two enrichers' chunks.
  const resent = agents.reduce((n, x) => n + x.client.stats.batchesResent, 0);
  await stopAll();
  assert.equal(await a.enricher.stop(), 0);
  assert.equal(await b.enricher.stop(), 0);
  const rows = [...(await committedRows(a.dir)), ...(await committedRows(b.dir))];
  const ids = new Set(rows.map((r) => r.record_id));
  assert.equal(ids.size, total, `unique record_ids ${ids.size} of ${total} sent`);
  assert.ok(
    rows.length - ids.size <= resent * BATCH,
    `duplicates ${rows.length - ids.size}, re-sent ${resent}`,
  );
});
