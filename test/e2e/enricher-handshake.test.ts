// The link server's handshake (LINK.md "Lifecycle", "Security"): bad token, version,
// content type and identity are refused with their reason code and logged on our side; a
// peer that never says Hello is cut at the deadline; --max-connections holds; nothing but
// Hello is accepted before Welcome (raw bytes from the independent test builder).

import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { RejectCode } from '../../proto/link/constants';
import { findLog, startEnricher, waitFor } from '../support/enricher-helpers';
import { batchFrame, frame, Pb, splitLinkFrames, T } from '../support/link-builder';
import { TestAgent } from '../support/link-client';

const TOKEN = Buffer.from('s3cret-token');

async function rejected(t: Parameters<typeof startEnricher>[0], agentOpts: object, code: number) {
  const { port, lines, enricher } = await startEnricher(t, { authToken: TOKEN });
  const agent = await TestAgent.connect({ port, token: TOKEN, ...agentOpts });
  assert.equal(await agent.answer(), 'reject');
  assert.equal(agent.reject!.code, code);
  assert.equal(agent.reject!.supportedMaxVersion, 1);
  await agent.closed; // the enricher closes after the Reject
  const logged = findLog(lines, 'link connection rejected');
  assert.equal(logged.length, 1);
  assert.equal(logged[0]!.code, Object.entries(RejectCode).find(([, v]) => v === code)![0]);
  assert.equal(typeof logged[0]!.reason, 'string');
  const name = String(logged[0]!.code).toLowerCase();
  assert.equal(enricher.link!.stats.rejected.get(name), 1);
  return { agent, lines };
}

test('a correct Hello gets a Welcome with the advertised limits', async (t) => {
  const { port, enricher } = await startEnricher(t, { authToken: TOKEN });
  const agent = await TestAgent.connect({ port, token: TOKEN });
  t.after(() => agent.destroy());
  assert.equal(await agent.answer(), 'welcome');
  assert.deepEqual(agent.welcome, {
    protocolVersion: 1,
    enricherId: 'enr-test',
    maxInFlightBatches: 32,
    keepaliveIntervalMs: 15000,
    maxFrameBytes: 16 * 1024 * 1024,
  });
  assert.equal(enricher.link!.stats.handshakesCompleted, 1);
});

test('wrong token: Reject BAD_AUTH, logged', async (t) => {
  await rejected(t, { token: 'wrong' }, RejectCode.BAD_AUTH);
});

test('missing token: Reject BAD_AUTH', async (t) => {
  await rejected(t, { token: null }, RejectCode.BAD_AUTH);
});

test('wrong version: Reject BAD_VERSION with the supported range', async (t) => {
  const { agent } = await rejected(t, { minVersion: 2, maxVersion: 3 }, RejectCode.BAD_VERSION);
  assert.equal(agent.reject!.supportedMinVersion, 1);
});

test('wrong content type: Reject BAD_CONTENT_TYPE', async (t) => {
  await rejected(t, { contentType: 'protobuf:other' }, RejectCode.BAD_CONTENT_TYPE);
});

test('agent id outside the id alphabet: Reject BAD_IDENTITY (raw Hello)', async (t) => {
  const { port, lines } = await startEnricher(t);
  const hello = new Pb().uint(1, 1).len(3, 'a/b').len(4, 'inc').len(5, 'protobuf:dnstap.Dnstap');
  const reply = await rawExchange(port, frame(T.HELLO, hello));
  assert.equal(reply[0]!.type, T.REJECT);
  assert.equal(reply[0]!.body[1], RejectCode.BAD_IDENTITY); // field 1 varint
  assert.equal(findLog(lines, 'link connection rejected')[0]!.code, 'BAD_IDENTITY');
});

test('a client that never sends Hello is cut at the handshake deadline', async (t) => {
  const { port, enricher, lines } = await startEnricher(t, { link: { handshakeTimeoutMs: 200 } });
  const agent = await TestAgent.connect({ port, hello: false });
  const t0 = Date.now();
  await agent.closed;
  const took = Date.now() - t0;
  assert.ok(took >= 150 && took < 3000, `closed after ${took} ms`);
  assert.equal(agent.reject?.code, RejectCode.HANDSHAKE_TIMEOUT);
  assert.equal(enricher.link!.stats.handshakeTimeouts, 1);
  await waitFor(() => enricher.link!.stats.closed.get('handshake-timeout') === 1, 'close reason');
  assert.equal(findLog(lines, 'link connection rejected')[0]!.code, 'HANDSHAKE_TIMEOUT');
});

test('--max-connections holds: the extra connection gets TOO_MANY_CONNECTIONS', async (t) => {
  const { port, enricher } = await startEnricher(t, { link: { maxConnections: 2 } });
  const a = await TestAgent.connect({ port, agentId: 'a' });
  const b = await TestAgent.connect({ port, agentId: 'b' });
  t.after(() => {
    a.destroy();
    b.destroy();
  });
  assert.equal(await a.answer(), 'welcome');
  assert.equal(await b.answer(), 'welcome');
  const c = await TestAgent.connect({ port, agentId: 'c' });
  assert.equal(await c.answer(), 'reject');
  assert.equal(c.reject!.code, RejectCode.TOO_MANY_CONNECTIONS);
  await c.closed;
  // A slot freed is a slot usable again.
  a.goodbye();
  await a.closed;
  await waitFor(() => enricher.link!.connectionCount === 1, 'the rejected and the closed connection to go');
  const d = await TestAgent.connect({ port, agentId: 'd' });
  t.after(() => d.destroy());
  assert.equal(await d.answer(), 'welcome');
  assert.equal(enricher.link!.stats.rejected.get('too_many_connections'), 1);
});

test('a Batch before Welcome is a protocol error: Reject PROTOCOL_ERROR, no row written', async (t) => {
  const { port, enricher, lines } = await startEnricher(t);
  const reply = await rawExchange(port, batchFrame({ seq: 1, records: ['x'] }));
  assert.equal(reply.length, 1);
  assert.equal(reply[0]!.type, T.REJECT);
  assert.equal(reply[0]!.body[1], RejectCode.PROTOCOL_ERROR);
  assert.equal(enricher.link!.stats.protocolErrors.get('LINK_UNEXPECTED_TYPE'), 1);
  assert.equal(enricher.pipeline!.counters.frames, 0);
  assert.match(String(findLog(lines, 'link connection rejected')[0]!.reason), /LINK_UNEXPECTED_TYPE/);
});

test('a malformed Batch after Welcome: Reject PROTOCOL_ERROR, nothing of it written', async (t) => {
  const { port, enricher } = await startEnricher(t);
  const agent = await TestAgent.connect({ port });
  assert.equal(await agent.answer(), 'welcome');
  // seq absent: BatchView refuses the whole batch before any record is used.
  agent.send(frame(T.BATCH, new Pb().len(4, 'record-1').len(4, 'record-2')));
  await agent.closed;
  assert.equal(agent.reject?.code, RejectCode.PROTOCOL_ERROR);
  assert.equal(enricher.link!.stats.protocolErrors.get('LINK_BAD_MESSAGE'), 1);
  assert.equal(enricher.pipeline!.counters.frames, 0);
});

test('an HTTP request on the link port is refused before any body is buffered', async (t) => {
  const { port, enricher } = await startEnricher(t);
  const reply = await rawExchange(port, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
  assert.equal(reply[0]!.type, T.REJECT);
  assert.equal(enricher.link!.stats.protocolErrors.get('LINK_FRAME_TOO_LARGE'), 1);
});

/** Sends bytes on a fresh connection and returns the frames received until the server closes. */
function rawExchange(port: number, bytes: Buffer): Promise<{ type: number; body: Buffer }[]> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = net.connect({ host: '127.0.0.1', port }, () => s.write(bytes));
    s.on('data', (c) => chunks.push(c));
    s.on('error', reject);
    s.on('end', () => s.end());
    s.on('close', () => resolve(splitLinkFrames(Buffer.concat(chunks))));
  });
}
