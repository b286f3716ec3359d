// Control messages: encodeControl/decodeControl against protobufjs used directly and
// against builder-made bodies, both directions for every type; value validation, limits,
// malformed bodies, and the constants agreeing with link.proto.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type ControlMessageType,
  isTransientReject,
  MAX_CONTROL_BODY,
  MESSAGE_TYPE_NAMES,
  MessageType,
  messageTypeName,
  RejectCode,
  rejectCodeName,
} from '../../proto/link/constants';
import { type ControlInit, decodeControl, encodeControl, encodeFrame } from '../../proto/link/control';
import { CONTROL_SCHEMAS } from '../../proto/link/control-codec';
import { LinkFrameDecoder } from '../../proto/link/decoder';
import { LinkProtocolError } from '../../proto/link/errors';
import { RejectCodeEnum, schemaOf } from '../../proto/link/schema';
import { frame, Pb, prng, randInt, randomBytes, T } from '../support/link-builder';

/** A fully populated example of every control message. */
const SAMPLES: { [K in ControlMessageType]: ControlInit<K> } = {
  [MessageType.HELLO]: {
    protocolVersion: 1,
    minProtocolVersion: 1,
    agentId: 'resolver-0.ns',
    incarnation: '1718100000000-3f2a',
    contentType: 'protobuf:dnstap.Dnstap',
    authToken: Buffer.from('s3cret\u0000\u00ff', 'latin1'),
    software: 'snowtap/0.1.0',
  },
  [MessageType.WELCOME]: {
    protocolVersion: 1,
    enricherId: 'enricher-5d8f-x2',
    maxInFlightBatches: 32,
    keepaliveIntervalMs: 15000,
    maxFrameBytes: 16 * 1024 * 1024,
  },
  [MessageType.REJECT]: {
    code: RejectCode.OVERLOADED,
    message: 'queue full — try later',
    supportedMinVersion: 1,
    supportedMaxVersion: 1,
    retryAfterMs: 500,
  },
  [MessageType.ACK]: { seqs: [3, 1, 2 ** 53 - 1, 128] },
  [MessageType.DRAIN]: { reason: 'SIGTERM', deadlineMs: 20000 },
  [MessageType.PING]: { nonce: 2 ** 40 + 3 },
  [MessageType.PONG]: { nonce: 1 },
  [MessageType.GOODBYE]: { reason: 'switching connection' },
};

const CONTROL_TYPES = Object.keys(SAMPLES).map(Number) as ControlMessageType[];

function refObject(type: ControlMessageType, body: Uint8Array): Record<string, unknown> {
  const schema = schemaOf(type);
  return schema.toObject(schema.decode(body), { longs: Number, enums: Number, defaults: true, arrays: true });
}

function sameValues(actual: Record<string, unknown>, expected: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(expected)) {
    if (v instanceof Uint8Array) assert.deepEqual(Buffer.from(actual[k] as Uint8Array), Buffer.from(v), k);
    else assert.deepEqual(actual[k], v, k);
  }
}

test('every control message: encodeControl -> protobufjs and protobufjs -> decodeControl', () => {
  for (const type of CONTROL_TYPES) {
    const sample = SAMPLES[type] as Record<string, unknown>;
    const framed = encodeControl(type, sample as never);
    assert.equal(framed.readUInt32BE(0), framed.length - 4);
    assert.equal(framed[4], type);
    sameValues(refObject(type, framed.subarray(5)), sample);
    const schema = schemaOf(type);
    const refBody = schema.encode(schema.fromObject(sample)).finish();
    const decoded = decodeControl(type, frame(type, refBody), 5) as unknown as Record<string, unknown>;
    sameValues(decoded, sample);
    // All fields present in the decoded object, nothing else.
    assert.deepEqual(Object.keys(decoded).sort(), schema.fieldsArray.map((f) => f.name).sort());
  }
});

test("the run-time codec: its field table is link.proto's, its bodies are protobufjs' bytes", () => {
  for (const type of CONTROL_TYPES) {
    const ref = schemaOf(type);
    const mine = CONTROL_SCHEMAS[type];
    assert.equal(mine.name, ref.name);
    assert.deepEqual(
      mine.fieldsArray.map((f) => [f.name, f.id, f.type, f.repeated]),
      ref.fieldsArray.map((f) => [f.name, f.id, f.type, f.repeated]),
    );
    // Same bytes as protobufjs for the samples, for all-zero values and for an empty message.
    const zeros = Object.fromEntries(
      ref.fieldsArray.map((f) => [
        f.name,
        f.repeated
          ? [0]
          : f.type === 'string'
            ? ''
            : f.type === 'bytes'
              ? Buffer.alloc(0)
              : f.type === 'bool'
                ? false
                : 0,
      ]),
    );
    for (const m of [SAMPLES[type] as Record<string, unknown>, zeros, {}]) {
      const refBody = Buffer.from(ref.encode(ref.fromObject(m)).finish());
      assert.deepEqual(
        encodeControl(type, m as never).subarray(5),
        refBody,
        `${ref.name} ${JSON.stringify(m)}`,
      );
    }
  }
  // uint32 and enum fields keep the low 32 bits of a longer varint, as protobufjs reads them.
  const wide = new Pb()
    .uint(1, 2n ** 32n + 7n)
    .uint(3, 2n ** 40n + 2n ** 31n)
    .buffer();
  assert.equal(decodeControl(MessageType.REJECT, wide).code, refObject(MessageType.REJECT, wide).code);
  assert.equal(decodeControl(MessageType.REJECT, wide).supportedMinVersion, 2 ** 31);
});

test('an empty body decodes to all-zero defaults for every type', () => {
  for (const type of CONTROL_TYPES) {
    const m = decodeControl(type, Buffer.alloc(0)) as unknown as Record<string, unknown>;
    for (const f of schemaOf(type).fieldsArray) {
      const v = m[f.name];
      if (f.repeated) assert.deepEqual(v, []);
      else if (f.type === 'string') assert.equal(v, '');
      else if (f.type === 'bytes') assert.ok(Buffer.isBuffer(v) && v.length === 0);
      else if (f.type === 'bool') assert.equal(v, false, `${f.name}`);
      else assert.equal(v, 0, `${f.name}`);
    }
  }
});

test('builder-written bodies decode, including unknown fields (skipped) and unknown reject codes', () => {
  const hello = new Pb().uint(1, 2).len(3, 'a1').len(100, 'future field').len(6, [0, 1, 2]);
  const h = decodeControl(MessageType.HELLO, hello.buffer());
  assert.equal(h.protocolVersion, 2);
  assert.equal(h.agentId, 'a1');
  assert.deepEqual(h.authToken, Buffer.from([0, 1, 2]));
  const reject = decodeControl(MessageType.REJECT, new Pb().uint(1, 77).len(2, 'new').buffer());
  assert.equal(reject.code, 77);
  assert.equal(rejectCodeName(reject.code), 'CODE_77');
  // Ack seqs: packed (proto3 default) and unpacked both decode.
  const packed = new Pb().len(1, [1, 0x80, 0x01]).buffer();
  const unpacked = new Pb().uint(1, 1).uint(1, 128).buffer();
  assert.deepEqual(decodeControl(MessageType.ACK, packed).seqs, [1, 128]);
  assert.deepEqual(decodeControl(MessageType.ACK, unpacked).seqs, [1, 128]);
});

test('decoded frames off the wire: a control stream through the frame decoder', () => {
  const stream = Buffer.concat(CONTROL_TYPES.map((t) => encodeControl(t, SAMPLES[t] as never)));
  const seen: number[] = [];
  const d = new LinkFrameDecoder({
    onFrame: (t, b, s, e) => {
      seen.push(t);
      sameValues(
        decodeControl(t as ControlMessageType, b, s, e) as never,
        SAMPLES[t as ControlMessageType] as never,
      );
    },
  });
  for (let i = 0; i < stream.length; i += 3) d.write(stream.subarray(i, i + 3));
  d.end();
  assert.deepEqual(seen, CONTROL_TYPES);
});

test('encodeControl validates field names, types and ranges', () => {
  const bad: [ControlMessageType, Record<string, unknown>, RegExp][] = [
    [MessageType.HELLO, { agent_id: 'x' }, /unknown field "agent_id"/],
    [MessageType.HELLO, { protocolVersion: -1 }, /protocolVersion must be a uint32/],
    [MessageType.HELLO, { protocolVersion: 2 ** 32 }, /uint32/],
    [MessageType.HELLO, { agentId: 5 }, /agentId must be a string/],
    [MessageType.HELLO, { authToken: 5 }, /authToken must be a bytes/],
    [MessageType.WELCOME, { maxInFlightBatches: 1.5 }, /uint32/],
    [MessageType.ACK, { seqs: [1, 2 ** 53] }, /seqs must be a uint64/],
    [MessageType.ACK, { seqs: 1 }, /must be an array/],
    [MessageType.PING, { nonce: -1 }, /uint64/],
    [MessageType.REJECT, { code: -3 }, /code must be a Code value/],
  ];
  for (const [type, msg, re] of bad) {
    assert.throws(() => encodeControl(type, msg as never), { code: 'LINK_INVALID_ARGUMENT', message: re });
  }
  assert.throws(() => encodeControl(MessageType.BATCH as never, {}), {
    code: 'LINK_INVALID_ARGUMENT',
    message: /not a control message/,
  });
  assert.throws(() => encodeControl(MessageType.GOODBYE, { reason: 'x'.repeat(MAX_CONTROL_BODY) }), {
    code: 'LINK_FRAME_TOO_LARGE',
  });
  // A string token is UTF-8; undefined fields are left out.
  const h = decodeControl(
    MessageType.HELLO,
    encodeControl(MessageType.HELLO, { authToken: 'é', agentId: undefined }),
    5,
  );
  assert.deepEqual(h.authToken, Buffer.from('é'));
  assert.deepEqual(encodeFrame(T.PONG, new Uint8Array(0)), Buffer.from([0, 0, 0, 1, T.PONG]));
});

test('malformed control bodies are LINK_BAD_MESSAGE; seqs and nonces above 2^53-1 too', () => {
  const cases: [ControlMessageType, Buffer][] = [
    [MessageType.HELLO, Buffer.from([0x1a, 0x05, 0x61])], // agent_id runs past the end
    [MessageType.HELLO, Buffer.from([0x08])], // truncated varint field
    [MessageType.WELCOME, Buffer.from([0x0f])], // wire type 7
    [MessageType.ACK, new Pb().uint(1, 2n ** 60n).buffer()],
    [MessageType.ACK, new Pb().len(1, [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10]).buffer()],
    [MessageType.PING, new Pb().uint(1, 2n ** 53n).buffer()],
    [MessageType.PONG, new Pb().uint(1, 2n ** 64n - 1n).buffer()],
  ];
  for (const [type, body] of cases) {
    assert.throws(() => decodeControl(type, body), { code: 'LINK_BAD_MESSAGE' }, body.toString('hex'));
  }
  assert.throws(() => decodeControl(MessageType.GOODBYE, Buffer.alloc(MAX_CONTROL_BODY + 1)), {
    code: 'LINK_FRAME_TOO_LARGE',
  });
  assert.throws(() => decodeControl(MessageType.BATCH as never, Buffer.alloc(1)), {
    code: 'LINK_INVALID_ARGUMENT',
  });
});

test('fuzz: random control bodies decode or fail with LINK_BAD_MESSAGE only', () => {
  const rand = prng(11);
  let failures = 0;
  for (let i = 0; i < 4000; i++) {
    const type = CONTROL_TYPES[randInt(rand, CONTROL_TYPES.length)]!;
    let body: Buffer;
    if (i % 2 === 0) body = randomBytes(rand, randInt(rand, 48));
    else {
      body = encodeControl(type, SAMPLES[type] as never).subarray(5);
      for (let m = 1 + randInt(rand, 3); m > 0 && body.length > 0; m--)
        body[randInt(rand, body.length)] = randInt(rand, 256);
    }
    try {
      decodeControl(type, body);
    } catch (err) {
      assert.ok(err instanceof LinkProtocolError && err.code === 'LINK_BAD_MESSAGE', String(err));
      failures++;
    }
  }
  assert.ok(failures > 200, `only ${failures} failures: the fuzz is not reaching errors`);
});

test('constants agree with link.proto', () => {
  assert.deepEqual({ ...RejectCodeEnum.values }, RejectCode);
  for (let t = 1; t <= 9; t++) assert.equal(schemaOf(t as ControlMessageType).name, MESSAGE_TYPE_NAMES[t]);
  assert.equal(messageTypeName(0), 'UNKNOWN(0x00)');
  assert.equal(messageTypeName(MessageType.BATCH), 'Batch');
  assert.deepEqual(Object.values(RejectCode).filter(isTransientReject), [
    0,
    RejectCode.TOO_MANY_CONNECTIONS,
    RejectCode.DRAINING,
    RejectCode.HANDSHAKE_TIMEOUT,
    RejectCode.OVERLOADED,
  ]);
  assert.equal(rejectCodeName(RejectCode.BAD_AUTH), 'BAD_AUTH');
});
