// Real producers into the agent: fstrm_replay (Debian fstrm-bin, libfstrm's bidirectional
// writer) over the agent's unix socket and TCP listener, through to the fake enricher:
// exact frame counts acknowledged, byte-identical, in order. Missing binaries skip with the
// package to install, or fail when SNOWTAP_REQUIRE_INTEROP=1.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, type TestContext, test } from 'node:test';
import {
  BULK,
  BULK_FRAMES,
  FIXTURES,
  fixturePayloads,
  makeAgent,
  stopAll,
  uniquePayloads,
  waitFor,
} from '../support/agent-harness';
import { FakeEnricher } from '../support/fake-enricher';
import { interopMissing } from '../support/interop';

const REPLAY = '/usr/bin/fstrm_replay';
const dir = mkdtempSync(path.join(tmpdir(), 'agent-interop-'));
const fakes: FakeEnricher[] = [];
after(async () => {
  await stopAll();
  await Promise.all(fakes.map((f) => f.close()));
  rmSync(dir, { recursive: true, force: true });
});

function replayBinary(t: TestContext): boolean {
  if (existsSync(REPLAY)) return true;
  return interopMissing(t, 'fstrm_replay not installed: apt-get install fstrm-bin');
}

function run(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(REPLAY, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

for (const transport of ['unix', 'tcp'] as const) {
  test(`fstrm_replay -> agent (${transport}) -> enricher: ${BULK_FRAMES} + 628 frames acknowledged exactly`, async (t) => {
    if (!replayBinary(t)) return;
    const f = await FakeEnricher.start({ ackDelayMs: 1 });
    fakes.push(f);
    const sock = path.join(dir, `${transport}.sock`);
    const agent = makeAgent(
      f,
      transport === 'unix' ? { dnstapSocket: sock } : { dnstapTcp: { host: '127.0.0.1', port: 0 } },
    );
    const bound = await agent.start();
    const target = transport === 'unix' ? ['-u', sock] : ['-a', '127.0.0.1', '-p', String(bound.tcpPort)];
    const small = path.join(FIXTURES, 'unbound-local-unix.fstrm');
    const { code, stderr } = await run(['-t', 'protobuf:dnstap.Dnstap', ...target, '-r', BULK, '-r', small]);
    assert.equal(code, 0, stderr);
    const total = BULK_FRAMES + 628;
    await waitFor(
      () => agent.client.stats.recordsAcked === total,
      () => `${total} acked, have ${agent.client.stats.recordsAcked}`,
    );
    const want = [...(await fixturePayloads(BULK)), ...(await fixturePayloads(small))];
    const got = uniquePayloads(f);
    assert.equal(got.length, total);
    for (let i = 0; i < total; i++) assert.ok(got[i]!.equals(want[i]!), `frame ${i}`);
    assert.equal(agent.counters.recordsIn, total);
    assert.equal(agent.server!.stats.closedByReason['finished'], 1);
    assert.deepEqual(f.resentAfterAck, []);
  });
}
