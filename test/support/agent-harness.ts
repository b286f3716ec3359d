// Shared by the agent-*.test.ts files (not a test itself): an in-process agent with test
// timings aimed at a FakeEnricher, an in-process dnstap producer (bidirectional Frame
// Streams over unix or TCP), fixture payloads, polling, a log catcher.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import { Agent, type AgentOptions } from '../../agent';
import { silentLogger } from '../../common/log';
import { encodeDataFrame, FrameDecoder, readFrameStreamFile, WriterSession } from '../../proto/framestream';
import type { FakeEnricher } from './fake-enricher';

export const FIXTURES = path.resolve(__dirname, '../../../test/fixtures');
export const BULK = path.join(FIXTURES, 'unbound-local-unix-bulk.fstrm');
export const BULK_FRAMES = 13002;

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls until cond() holds; fails naming `what` after `ms`. */
export async function waitFor(
  cond: () => boolean,
  what: string | (() => string),
  ms = 10_000,
): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until)
      assert.fail(`timed out after ${ms} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await sleep(5);
  }
}

/** Every data frame payload of a fixture, in file order. */
export async function fixturePayloads(file = BULK): Promise<Buffer[]> {
  const out: Buffer[] = [];
  await readFrameStreamFile(file, (buf, start, end) => out.push(Buffer.from(buf.subarray(start, end))));
  return out;
}

export function payload(i: number): Buffer {
  return Buffer.from(`record ${i} ${'x'.repeat(i % 61)}`, 'latin1');
}

export { captureLog } from './capture-log';

/** Agents started by a test file, stopped by stopAll() in its after(). */
const running: Agent[] = [];

/** An agent aimed at `fake` with fast test timings; `extra` overrides anything. */
export function makeAgent(fake: FakeEnricher | { port: number }, extra: Partial<AgentOptions>): Agent {
  const agent = new Agent({
    id: 'agent-test',
    enrichers: [{ host: '127.0.0.1', port: fake.port }],
    switchIntervalMs: 0,
    backoffStartMs: 20,
    backoffMaxMs: 200,
    configRetryMs: 500,
    handshakeTimeoutMs: 2_000,
    drainTimeoutMs: 2_000,
    retireTimeoutMs: 1_000,
    batchLingerMs: 5,
    log: silentLogger(),
    ...extra,
  });
  running.push(agent);
  return agent;
}

export async function stopAll(): Promise<void> {
  await Promise.all(running.splice(0).map((a) => a.stop()));
}

/** A dnstap producer as a DNS server is: READY/ACCEPT/START, data frames, STOP/FINISH. */
export class Producer {
  private readonly session = new WriterSession({ bidirectional: true });
  private waiters: (() => void)[] = [];

  private constructor(readonly socket: net.Socket) {
    const decoder = new FrameDecoder({
      onData: () => assert.fail('the agent sent a data frame'),
      onControl: (f) => {
        const reply = this.session.onControl(f);
        if (reply !== null) socket.write(reply);
        for (const w of this.waiters.splice(0)) w();
      },
    });
    socket.on('data', (d) => decoder.write(d));
    socket.on('error', () => {});
  }

  static async open(target: string | number): Promise<Producer> {
    const socket = typeof target === 'string' ? net.connect(target) : net.connect(target, '127.0.0.1');
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const p = new Producer(socket);
    socket.write(p.session.open());
    while (!p.session.streaming) await new Promise<void>((r) => p.waiters.push(r));
    return p;
  }

  send(payloads: Iterable<Buffer>): Promise<void> {
    const frames: Buffer[] = [];
    for (const x of payloads) frames.push(encodeDataFrame(x));
    return new Promise((resolve, reject) =>
      this.socket.write(Buffer.concat(frames), (e) => (e ? reject(e) : resolve())),
    );
  }

  async stop(): Promise<void> {
    const closed = new Promise<void>((r) => this.socket.once('close', () => r()));
    this.socket.write(this.session.stop());
    while (this.session.state !== 'finished') await new Promise<void>((r) => this.waiters.push(r));
    this.socket.end();
    await closed;
  }
}

/** Every record the fake got, in arrival order, flattened (duplicates included). */
export function receivedPayloads(fake: FakeEnricher): Buffer[] {
  return fake.batches.flatMap((b) => b.records);
}

/** Records of distinct batches (first arrival of each incarnation/seq), in arrival order. */
export function uniquePayloads(fake: FakeEnricher): Buffer[] {
  const seen = new Set<string>();
  const out: Buffer[] = [];
  for (const b of fake.batches) {
    const k = `${b.incarnation}/${b.seq}`;
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(...b.records);
  }
  return out;
}

/**
 * One agent test file's shared set-up: a temp dir, the fake enrichers it starts (push them to
 * `fakes`), and an after() hook that stops every agent, closes the fakes and removes the dir.
 */
export function agentSuite(prefix: string): { dir: string; fakes: FakeEnricher[] } {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  const fakes: FakeEnricher[] = [];
  after(async () => {
    await stopAll();
    await Promise.all(fakes.map((f) => f.close()));
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir, fakes };
}
