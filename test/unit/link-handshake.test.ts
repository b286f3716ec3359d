// The handshake matrix: the enricher's answer to Hellos (versions, content types, tokens,
// identities), the agent's check of Welcomes, and a round trip through the wire encoding.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  DEFAULT_MAX_IN_FLIGHT_BATCHES,
  MAX_LINK_FRAME,
  MessageType,
  RejectCode,
} from '../../proto/link/constants';
import { decodeControl, encodeControl, type Hello } from '../../proto/link/control';
import {
  type AgentHandshakeSettings,
  checkWelcome,
  EnricherHandshake,
  type EnricherHandshakeSettings,
  makeHello,
} from '../../proto/link/handshake';

const AGENT: AgentHandshakeSettings = {
  agentId: 'resolver-0',
  incarnation: '1718100000-ab12',
  authToken: 'tok-123',
};
const ENRICHER: EnricherHandshakeSettings = { enricherId: 'enricher-0', authToken: 'tok-123' };

/** The Hello as the enricher sees it: encoded by the agent, decoded off the wire. */
function wireHello(settings: AgentHandshakeSettings, patch: Partial<Hello> = {}): Hello {
  const frame = encodeControl(MessageType.HELLO, { ...makeHello(settings), ...patch });
  return decodeControl(MessageType.HELLO, frame, 5);
}

function rejectCode(hs: EnricherHandshake, hello: Hello): number | 'ok' {
  const v = hs.answer(hello);
  if (v.ok) return 'ok';
  assert.equal(v.reject.supportedMinVersion, hs.minVersion);
  assert.equal(v.reject.supportedMaxVersion, hs.maxVersion);
  assert.ok(v.reject.message.length > 0);
  return v.reject.code;
}

test('a good Hello gets a Welcome with the enricher settings', () => {
  const hs = new EnricherHandshake({ ...ENRICHER, maxInFlightBatches: 8, keepaliveIntervalMs: 5000 });
  const v = hs.answer(wireHello(AGENT));
  assert.ok(v.ok);
  assert.equal(v.version, 1);
  assert.deepEqual(v.welcome, {
    protocolVersion: 1,
    enricherId: 'enricher-0',
    maxInFlightBatches: 8,
    keepaliveIntervalMs: 5000,
    maxFrameBytes: 0,
  });
  assert.equal(hs.requiresToken, true);
});

test('versions: the highest common one wins; no overlap is BAD_VERSION with the supported range', () => {
  const hs = new EnricherHandshake(ENRICHER);
  const cases: [number, number, number | 'ok'][] = [
    [1, 0, 'ok'], // min 0 = same as max
    [3, 1, 'ok'], // a newer agent that still speaks 1
    [2, 2, RejectCode.BAD_VERSION],
    [0, 0, RejectCode.BAD_VERSION],
    [1, 2, RejectCode.BAD_VERSION], // min above max
  ];
  for (const [max, min, want] of cases) {
    const hello = wireHello(AGENT, { protocolVersion: max, minProtocolVersion: min });
    assert.equal(rejectCode(hs, hello), want, `${min}..${max}`);
    const v = hs.answer(hello);
    if (v.ok) assert.equal(v.version, 1);
    else assert.match(v.reject.message, /versions/);
  }
});

test('content type must be one the enricher serves', () => {
  const hs = new EnricherHandshake(ENRICHER);
  assert.equal(
    rejectCode(hs, wireHello({ ...AGENT, contentType: 'protobuf:other.Thing' })),
    RejectCode.BAD_CONTENT_TYPE,
  );
  assert.equal(rejectCode(hs, wireHello(AGENT, { contentType: '' })), RejectCode.BAD_CONTENT_TYPE);
  const multi = new EnricherHandshake({ ...ENRICHER, contentTypes: ['protobuf:other.Thing'] });
  assert.equal(rejectCode(multi, wireHello({ ...AGENT, contentType: 'protobuf:other.Thing' })), 'ok');
});

test('tokens: wrong (same or other length), empty when required, and not required at all', () => {
  const hs = new EnricherHandshake(ENRICHER);
  assert.equal(rejectCode(hs, wireHello({ ...AGENT, authToken: 'tok-124' })), RejectCode.BAD_AUTH);
  assert.equal(rejectCode(hs, wireHello({ ...AGENT, authToken: 'tok-1234567890' })), RejectCode.BAD_AUTH);
  assert.equal(rejectCode(hs, wireHello({ ...AGENT, authToken: 'tok' })), RejectCode.BAD_AUTH);
  assert.equal(rejectCode(hs, wireHello({ ...AGENT, authToken: null })), RejectCode.BAD_AUTH);
  assert.match(
    (hs.answer(wireHello({ ...AGENT, authToken: '' })) as { reject: { message: string } }).reject.message,
    /required/,
  );
  // Bytes and string forms of the same token are the same token.
  assert.equal(rejectCode(hs, wireHello({ ...AGENT, authToken: Buffer.from('tok-123') })), 'ok');
  for (const none of [undefined, null, '', Buffer.alloc(0)]) {
    const open = new EnricherHandshake({ enricherId: 'e', authToken: none });
    assert.equal(open.requiresToken, false);
    assert.equal(rejectCode(open, wireHello({ ...AGENT, authToken: null })), 'ok');
    // An agent configured before its enrichers (token roll-out) is still accepted.
    assert.equal(rejectCode(open, wireHello(AGENT)), 'ok');
  }
});

test('identity: agent_id and incarnation must be ids', () => {
  const hs = new EnricherHandshake(ENRICHER);
  for (const patch of [
    { agentId: '' },
    { agentId: 'a/b' },
    { agentId: 'a b' },
    { agentId: 'é' },
    { agentId: 'x'.repeat(254) },
    { incarnation: '' },
    { incarnation: 'x'.repeat(65) },
    { incarnation: 'i,1' },
  ]) {
    assert.equal(rejectCode(hs, wireHello(AGENT, patch)), RejectCode.BAD_IDENTITY, JSON.stringify(patch));
  }
  assert.equal(
    rejectCode(hs, wireHello(AGENT, { agentId: 'x'.repeat(253), incarnation: 'A.b_c:d-9' })),
    'ok',
  );
});

test('check order: version before token before content type before identity', () => {
  const hs = new EnricherHandshake(ENRICHER);
  const all = {
    protocolVersion: 9,
    minProtocolVersion: 9,
    authToken: Buffer.from('x'),
    contentType: 'y',
    agentId: '',
  };
  assert.equal(rejectCode(hs, wireHello(AGENT, all)), RejectCode.BAD_VERSION);
  assert.equal(
    rejectCode(hs, wireHello(AGENT, { ...all, protocolVersion: 1, minProtocolVersion: 1 })),
    RejectCode.BAD_AUTH,
  );
  const tokened = { ...all, protocolVersion: 1, minProtocolVersion: 1, authToken: Buffer.from('tok-123') };
  assert.equal(rejectCode(hs, wireHello(AGENT, tokened)), RejectCode.BAD_CONTENT_TYPE);
  assert.equal(
    rejectCode(hs, wireHello(AGENT, { ...tokened, contentType: 'protobuf:dnstap.Dnstap' })),
    RejectCode.BAD_IDENTITY,
  );
});

test('reject() builds Rejects for the owner-side codes, with the range and retry advice', () => {
  const hs = new EnricherHandshake(ENRICHER);
  const r = hs.reject(RejectCode.TOO_MANY_CONNECTIONS, 'max 100', 1000);
  assert.deepEqual(r, {
    code: RejectCode.TOO_MANY_CONNECTIONS,
    message: 'max 100',
    supportedMinVersion: 1,
    supportedMaxVersion: 1,
    retryAfterMs: 1000,
  });
  const wire = decodeControl(MessageType.REJECT, encodeControl(MessageType.REJECT, r), 5);
  assert.deepEqual(wire, r);
});

test('settings are validated by name', () => {
  const bad: [EnricherHandshakeSettings, RegExp][] = [
    [{ enricherId: '' }, /enricherId/],
    [{ enricherId: 'a/b' }, /enricherId/],
    [{ enricherId: 'e', maxVersion: 2 }, /maxVersion/],
    [{ enricherId: 'e', minVersion: 0 }, /minVersion/],
    [{ enricherId: 'e', maxInFlightBatches: 0 }, /maxInFlightBatches/],
    [{ enricherId: 'e', keepaliveIntervalMs: -1 }, /keepaliveIntervalMs/],
    [{ enricherId: 'e', maxFrameBytes: MAX_LINK_FRAME + 1 }, /maxFrameBytes/],
    [{ enricherId: 'e', authToken: 'x'.repeat(5000) }, /authToken/],
  ];
  for (const [s, re] of bad)
    assert.throws(() => new EnricherHandshake(s), { code: 'LINK_INVALID_ARGUMENT', message: re });
  for (const [s, re] of [
    [{ ...AGENT, agentId: 'a/b' }, /agentId/],
    [{ ...AGENT, incarnation: '' }, /incarnation/],
    [{ ...AGENT, maxVersion: 2 }, /maxVersion/],
    [{ ...AGENT, authToken: Buffer.alloc(5000) }, /authToken/],
  ] as const) {
    assert.throws(() => makeHello(s), { code: 'LINK_INVALID_ARGUMENT', message: re });
  }
});

test('the agent checks the Welcome and resolves defaults', () => {
  const hello = makeHello(AGENT);
  assert.equal(hello.software, 'snowtap');
  assert.equal(hello.contentType, 'protobuf:dnstap.Dnstap');
  const hs = new EnricherHandshake({ ...ENRICHER, maxInFlightBatches: 4, maxFrameBytes: 1 << 20 });
  const v = hs.answer(hello);
  assert.ok(v.ok);
  const wire = decodeControl(MessageType.WELCOME, encodeControl(MessageType.WELCOME, v.welcome), 5);
  assert.deepEqual(checkWelcome(wire, hello, 16), {
    version: 1,
    enricherId: 'enricher-0',
    maxInFlightBatches: 4,
    keepaliveIntervalMs: 15000,
    maxFrameBytes: 1 << 20,
  });
  const minimal = {
    protocolVersion: 1,
    enricherId: 'e',
    maxInFlightBatches: 0,
    keepaliveIntervalMs: 0,
    maxFrameBytes: 0,
  };
  assert.deepEqual(checkWelcome(minimal, hello), {
    version: 1,
    enricherId: 'e',
    maxInFlightBatches: DEFAULT_MAX_IN_FLIGHT_BATCHES,
    keepaliveIntervalMs: 0,
    maxFrameBytes: MAX_LINK_FRAME,
  });
  assert.equal(checkWelcome({ ...minimal, maxInFlightBatches: 100 }, hello, 10).maxInFlightBatches, 10);
  for (const [patch, re] of [
    [{ protocolVersion: 2 }, /version 2/],
    [{ protocolVersion: 0 }, /version 0/],
    [{ enricherId: '' }, /enricher_id/],
    [{ keepaliveIntervalMs: 10 }, /keepalive/],
    [{ maxFrameBytes: 1000 }, /max_frame_bytes/],
    [{ maxFrameBytes: MAX_LINK_FRAME + 1 }, /max_frame_bytes/],
  ] as const) {
    assert.throws(() => checkWelcome({ ...minimal, ...patch }, hello), {
      code: 'LINK_BAD_WELCOME',
      message: re,
    });
  }
});
