// Failures on the link: connections killed mid-stream while the enricher refuses to take
// new ones for a while (re-sends, at-least-once, duplicates only from unacknowledged
// windows, backoff in the reconnect timing), Drain (traffic moves, nothing lost, a missed
// deadline re-sends), Rejects (BAD_AUTH loud and slow, retry_after_ms honoured),
// keepalive (Ping when idle, a silent peer is dropped), a protocol error from the peer.

import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import type { Agent } from '../../agent';
import { RejectCode } from '../../proto/link';
import {
  agentSuite,
  captureLog,
  makeAgent,
  Producer,
  payload,
  receivedPayloads,
  sleep,
  waitFor,
} from '../support/agent-harness';
import { batchKey, FakeEnricher, type FakeEnricherOptions } from '../support/fake-enricher';

const { dir, fakes } = agentSuite('agent-failures-');

let n = 0;
async function setup(fakeOpts: FakeEnricherOptions, extra: Parameters<typeof makeAgent>[1] = {}) {
  const f = await FakeEnricher.start(fakeOpts);
  fakes.push(f);
  const sock = path.join(dir, `a${++n}.sock`);
  const agent = makeAgent(f, { dnstapSocket: sock, ...extra });
  await agent.start();
  return { f, agent, sock };
}

/** Each sent record arrived at least once; first arrivals, sorted by seq, are in send order. */
function assertAtLeastOnce(f: FakeEnricher, sent: Buffer[]): void {
  const firsts = new Map<string, { seq: number; records: Buffer[] }>();
  for (const b of f.batches) if (!firsts.has(batchKey(b))) firsts.set(batchKey(b), b);
  const got = [...firsts.values()].sort((a, b) => a.seq - b.seq).flatMap((b) => b.records);
  assert.equal(got.length, sent.length, 'every record at least once');
  for (let i = 0; i < sent.length; i++) assert.ok(got[i]!.equals(sent[i]!), `record ${i}`);
  // A batch arrives again only if its ack had not been sent when the connection died.
  assert.deepEqual(f.resentAfterAck, []);
  // Re-sends are unchanged, byte for byte.
  for (const b of f.batches) {
    const first = firsts.get(batchKey(b))!;
    assert.equal(b.records.length, first.records.length);
    for (let i = 0; i < b.records.length; i++) assert.ok(b.records[i]!.equals(first.records[i]!));
  }
}

async function acked(agent: Agent, records: number, ms = 15_000): Promise<void> {
  await waitFor(
    () => agent.client.stats.recordsAcked >= records,
    () => `${records} acked, have ${agent.client.stats.recordsAcked}`,
    ms,
  );
}

test('connections killed mid-stream, enricher refusing for a while: re-sent, at least once, with backoff', async (t) => {
  const { f, agent, sock } = await setup(
    { ackDelayMs: 40 },
    { backoffStartMs: 20, backoffMaxMs: 400, batchRecords: 20 },
  );
  const p = await Producer.open(sock);
  const sent: Buffer[] = [];
  let i = 0;
  const more = async (count: number) => {
    const burst = Array.from({ length: count }, () => payload(i++));
    sent.push(...burst);
    await p.send(burst);
  };
  await more(200);
  await waitFor(() => agent.client.inFlight > 0 && f.batches.length > 3, 'batches in flight');
  // Full jitter draws each wait uniformly from [0, cap]: a timing check on a dozen draws is
  // noise. While refused, pin the draw to its top so the waits are the caps themselves.
  const random = t.mock.method(Math, 'random', () => 0.999);
  const refusedAt = Date.now();
  f.configure({ refuse: true });
  f.killAll();
  const attemptsBefore = f.attempts.length;
  for (let k = 0; k < 10; k++) {
    await more(30);
    await sleep(100);
  }
  f.configure({ refuse: false });
  const reopenedAt = Date.now();
  random.mock.restore();
  await more(100);
  await acked(agent, sent.length);
  await p.stop();
  assertAtLeastOnce(f, sent);
  assert.ok(agent.client.stats.batchesResent > 0, 'unacknowledged batches were re-sent');
  const refused = f.attempts.slice(attemptsBefore).filter((t) => t >= refusedAt && t < reopenedAt);
  // ~1 s refused: exponential backoff (from 20 or 40 ms, depending on how many of the
  // killed connections counted as young deaths when the loop started, doubling to the
  // 400 ms cap) makes a handful of attempts, not hundreds.
  assert.ok(refused.length >= 3 && refused.length <= 12, `${refused.length} attempts while refused`);
  const gaps = refused.slice(1).map((at, k) => at - refused[k]!);
  // Timers never fire early (1 ms of clock rounding aside), so each gap is at least its cap:
  // the k-th wait is at least 20 ms × 2^(k+1), capped at 400 ms. Load only lengthens gaps,
  // so the upper bound (the cap holds) gets generous slack.
  const floor = (k: number) => Math.min(400, 20 * 2 ** (k + 1)) * 0.999 - 2;
  gaps.forEach((g, k) => {
    assert.ok(g >= floor(k), `gap ${k} of ${gaps.join(',')} ms is under ${floor(k).toFixed(0)} ms`);
  });
  assert.ok(Math.max(...gaps) <= 400 + 350, `gaps ${gaps.join(',')} ms: the 400 ms cap is not held`);
  assert.ok(agent.client.stats.reconnects >= 3);
  assert.ok(agent.client.stats.lost >= 1);
});

test('Drain of the active connection: traffic moves to another one, the drained one says Goodbye, nothing lost', async () => {
  const { f, agent, sock } = await setup({ ackDelayMs: 30 }, { batchRecords: 10 });
  await waitFor(() => f.live().length === 2, 'active + standby');
  const p = await Producer.open(sock);
  const sent: Buffer[] = [];
  for (let k = 0; k < 100; k++) sent.push(payload(k));
  await p.send(sent.slice(0, 50));
  await waitFor(() => f.batches.length >= 2, 'first batches');
  const drained = f.conns[f.batches[0]!.conn - 1]!;
  f.drain(drained, 2000, 'enricher shutting down');
  await waitFor(() => agent.client.stats.drains === 1, 'the drain seen');
  const drainSeen = Date.now();
  await p.send(sent.slice(50));
  await acked(agent, sent.length);
  await p.stop();
  assertAtLeastOnce(f, sent);
  assert.equal(receivedPayloads(f).length, sent.length, 'no duplicates: the drained window was acknowledged');
  assert.ok(
    f.batches.every((b) => b.conn !== drained.id || b.at <= drainSeen),
    'no batch on the drained connection',
  );
  await waitFor(() => drained.closedAt > 0, 'the drained connection closed');
  assert.match(drained.goodbye ?? '', /drained: enricher shutting down/);
  await waitFor(
    () => agent.client.roles().active === 1 && agent.client.roles().standby === 1,
    'a fresh standby',
  );
});

test('Drain whose deadline passes: the unacknowledged window is re-sent on another connection', async () => {
  const { f, agent, sock } = await setup({ manualAck: true }, { batchRecords: 10 });
  await waitFor(() => f.live().length === 2, 'active + standby');
  const p = await Producer.open(sock);
  const sent = Array.from({ length: 40 }, (_, k) => payload(k));
  await p.send(sent);
  await waitFor(() => f.batches.length === 4, 'four batches held unacked');
  const drained = f.conns[f.batches[0]!.conn - 1]!;
  f.configure({ manualAck: false });
  f.drain(drained, 300);
  await acked(agent, sent.length);
  await p.stop();
  assertAtLeastOnce(f, sent);
  assert.equal(agent.client.stats.batchesResent, 4);
  assert.ok(f.batches.slice(4).every((b) => b.conn !== drained.id));
});

test('Reject BAD_AUTH: logged loudly with the reason, retried slowly; the right token gets in', async () => {
  const { log, lines } = captureLog();
  const { f, agent } = await setup({ authToken: 'right' }, { authToken: 'wrong', configRetryMs: 400, log });
  await sleep(1300);
  // One attempt at once, then one per configRetryMs (+ backoff): at most 4 in 1.3 s.
  assert.ok(f.attempts.length >= 2 && f.attempts.length <= 4, `${f.attempts.length} attempts`);
  assert.ok(agent.client.stats.rejects['BAD_AUTH']! >= 2);
  const err = lines.find((l) => l.level === 'error' && /BAD_AUTH/.test(String(l.msg)));
  assert.ok(err, 'an error line naming BAD_AUTH');
  assert.match(JSON.stringify(err), /auth token does not match/);
  assert.equal(agent.client.active, null);

  const g = await FakeEnricher.start({ authToken: 'right' });
  fakes.push(g);
  const ok = makeAgent(g, { dnstapSocket: path.join(dir, 'auth-ok.sock'), authToken: 'right' });
  await ok.start();
  await waitFor(() => ok.client.active !== null, 'welcomed with the right token');
  assert.equal(g.conns[0]!.hello!.authToken.toString(), 'right');
});

test('transient Reject with retry_after_ms: honoured as a minimum wait', async () => {
  const { f, agent } = await setup({ reject: { code: RejectCode.OVERLOADED, retryAfterMs: 300 } });
  await waitFor(() => f.attempts.length >= 3, 'three attempts', 5000);
  const gaps = f.attempts.slice(1).map((t, k) => t - f.attempts[k]!);
  assert.ok(
    gaps.every((g) => g >= 290),
    `gaps ${gaps}`,
  );
  assert.ok(agent.client.stats.rejects['OVERLOADED']! >= 2);
  f.configure({ reject: null });
  await waitFor(() => agent.client.active !== null, 'welcomed once the enricher takes us');
});

test('keepalive: Pings while idle; a peer silent for 3 intervals is dropped and replaced', async () => {
  const { f, agent } = await setup({ keepaliveMs: 1000 });
  await waitFor(() => f.live().length === 2, 'two connections');
  await sleep(1300);
  assert.ok(
    f.conns.slice(0, 2).every((c) => c.pings >= 1),
    'idle connections pinged',
  );
  f.configure({ mute: true });
  const lost = agent.client.stats.lost;
  await waitFor(() => agent.client.stats.lost >= lost + 2, 'both silent connections dropped', 6000);
});

test('a protocol error from the enricher closes the connection (counted by code); batches re-sent', async () => {
  const { f, agent, sock } = await setup({ manualAck: true });
  await waitFor(() => f.live().length === 2, 'two connections');
  const p = await Producer.open(sock);
  const sent = [payload(1), payload(2), payload(3)];
  await p.send(sent);
  await waitFor(() => f.batches.length >= 1, 'a batch');
  f.configure({ manualAck: false });
  f.sendRaw(f.conns[f.batches[0]!.conn - 1]!, Buffer.from([0, 0, 0, 1, 0x0b]));
  await acked(agent, sent.length);
  await p.stop();
  assert.equal(agent.client.stats.protocolErrors['LINK_UNKNOWN_TYPE'], 1);
  assertAtLeastOnce(f, sent);
  assert.ok(agent.client.stats.batchesResent >= 1);
});
