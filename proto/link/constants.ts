// Link protocol wire constants and the limits Snowtap enforces on them (LINK.md).
//
// Wire summary:
//   frame = be32 N (1 <= N <= limit) | u8 message type | (N-1) bytes protobuf body
// N counts the type byte and the body, not itself. N = 0 is invalid, which also makes a
// Frame Streams peer (its frames may start with a be32 0 escape) fail on its first frame.

/** Protocol versions this code speaks. A new message type or new semantics bumps the max. */
export const PROTOCOL_VERSION = 1;
export const MIN_PROTOCOL_VERSION = 1;

/** Message type byte of every frame. 0 is reserved so that a zeroed buffer never decodes. */
export const MessageType = {
  HELLO: 0x01,
  WELCOME: 0x02,
  REJECT: 0x03,
  BATCH: 0x04,
  ACK: 0x05,
  DRAIN: 0x06,
  PING: 0x07,
  PONG: 0x08,
  GOODBYE: 0x09,
} as const;

export type MessageTypeCode = (typeof MessageType)[keyof typeof MessageType];
/** Every type but BATCH: small, rare, decoded with protobufjs (control.ts). */
export type ControlMessageType = Exclude<MessageTypeCode, typeof MessageType.BATCH>;

/** Index = type code; protobuf message names in link.proto. */
export const MESSAGE_TYPE_NAMES: readonly string[] = [
  '',
  'Hello',
  'Welcome',
  'Reject',
  'Batch',
  'Ack',
  'Drain',
  'Ping',
  'Pong',
  'Goodbye',
];

export function isMessageType(type: number): type is MessageTypeCode {
  return type >= MessageType.HELLO && type <= MessageType.GOODBYE;
}

/** Printable name of a type byte, `UNKNOWN(0x..)` outside the table. */
export function messageTypeName(type: number): string {
  return isMessageType(type) ? MESSAGE_TYPE_NAMES[type]! : `UNKNOWN(0x${type.toString(16).padStart(2, '0')})`;
}

/** Reject.Code in link.proto (a test checks the two agree). */
export const RejectCode = {
  UNSPECIFIED: 0,
  BAD_VERSION: 1,
  BAD_AUTH: 2,
  BAD_CONTENT_TYPE: 3,
  TOO_MANY_CONNECTIONS: 4,
  DRAINING: 5,
  HANDSHAKE_TIMEOUT: 6,
  PROTOCOL_ERROR: 7,
  OVERLOADED: 8,
  BAD_IDENTITY: 9,
} as const;

/** A number, not a union: a newer enricher may send a code this agent does not know. */
export type RejectCodeValue = number;

/** Name of a reject code for logs and metric labels; `CODE_<n>` for unknown ones. */
export function rejectCodeName(code: number): string {
  for (const [name, value] of Object.entries(RejectCode)) if (value === code) return name;
  return `CODE_${code}`;
}

/**
 * Codes after which a reconnect can succeed without an operator: the next connection may
 * land on another pod, or this one recovers. The others (version, auth, content type,
 * identity) need a configuration change; agents retry them too, but slowly and loudly.
 */
export function isTransientReject(code: number): boolean {
  return (
    code === RejectCode.TOO_MANY_CONNECTIONS ||
    code === RejectCode.DRAINING ||
    code === RejectCode.HANDSHAKE_TIMEOUT ||
    code === RejectCode.OVERLOADED ||
    code === RejectCode.UNSPECIFIED
  );
}

/** be32 frame length. */
export const LENGTH_SIZE = 4;
/** Length + type byte: bytes before a frame's protobuf body. */
export const FRAME_HEADER_SIZE = 5;

/**
 * Largest frame length N anyone may send. A batch must fit at least one 1 MiB dnstap record
 * (the Frame Streams default limit) plus its header; 16 MiB leaves room for large batches and
 * bounds what one connection can make a receiver buffer.
 */
export const MAX_LINK_FRAME = 16 * 1024 * 1024;

/**
 * Largest body of any non-Batch message. Checked as soon as the type byte arrives, so a
 * peer that has not completed the handshake can make the enricher buffer at most this much.
 */
export const MAX_CONTROL_BODY = 64 * 1024;

/**
 * Batch bytes that are not records, at most: tag + 10-byte seq, tag + length + a 64-byte
 * incarnation, tag + 5-byte sample rate. Plus each record's tag and (<= 4-byte) length.
 */
export const MAX_BATCH_HEADER_SIZE = 11 + 66 + 6;
export const MAX_RECORD_OVERHEAD = 5;
/** Largest record any batch can carry. Agents must cap their dnstap frame limit below it. */
export const MAX_RECORD_SIZE = MAX_LINK_FRAME - 1 - MAX_BATCH_HEADER_SIZE - MAX_RECORD_OVERHEAD;

/**
 * The one range of the dnstap frame limit (--max-frame-size of agent, enricher and convert):
 * at most what one link batch can carry, so every record an input accepts can be relayed.
 */
export const MAX_FRAME_SIZE_RANGE = { min: 1024, max: MAX_RECORD_SIZE } as const;

/** Batch field tags (field number << 3 | wire type), as link.proto numbers them. */
export const BatchTag = {
  SEQ: 0x08, // field 1, varint
  INCARNATION: 0x12, // field 2, length-delimited
  SAMPLE_RATE: 0x18, // field 3, varint
  RECORD: 0x22, // field 4, length-delimited
  RESENT: 0x28, // field 5, varint (bool)
} as const;

/** Bytes markResent() appends to a Batch frame; BatchEncoder keeps this much room below the frame limit. */
export const RESENT_MARK_BYTES = 2;

/** Largest seq / nonce: JavaScript numbers are exact up to here; larger ones are refused. */
export const MAX_SEQ = Number.MAX_SAFE_INTEGER;

/** agent_id: a pod name fits (DNS-1123 subdomain, 253). Enricher ids use the same rule. */
export const MAX_AGENT_ID_LENGTH = 253;
export const MAX_INCARNATION_LENGTH = 64;
/** Secrets longer than this are configuration mistakes (a whole file pasted, say). */
export const MAX_AUTH_TOKEN_LENGTH = 4096;

/** Content type of Batch records carrying dnstap (same string as in Frame Streams). */
export const DNSTAP_CONTENT_TYPE = 'protobuf:dnstap.Dnstap';

/** Defaults the enricher advertises and both sides apply (LINK.md, "Lifecycle"). */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
export const DEFAULT_KEEPALIVE_INTERVAL_MS = 15_000;
/** Silence for this many keepalive intervals means the peer is gone. */
export const KEEPALIVE_MISSES = 3;
export const DEFAULT_MAX_IN_FLIGHT_BATCHES = 32;
export const DEFAULT_DRAIN_DEADLINE_MS = 20_000;

/** Bit mask of message types, for LinkFrameDecoder.allowTypes(). */
export function typeMask(...types: MessageTypeCode[]): number {
  let mask = 0;
  for (const t of types) mask |= 1 << t;
  return mask;
}

/**
 * What each side may receive in each state (LINK.md, "Lifecycle"). Before the handshake the
 * enricher takes only Hello, so an unauthenticated peer cannot make it buffer a 16 MiB frame.
 */
export const Accepts = {
  ENRICHER_AWAIT_HELLO: typeMask(MessageType.HELLO),
  ENRICHER_OPEN: typeMask(MessageType.BATCH, MessageType.PING, MessageType.PONG, MessageType.GOODBYE),
  AGENT_AWAIT_WELCOME: typeMask(MessageType.WELCOME, MessageType.REJECT),
  AGENT_OPEN: typeMask(
    MessageType.ACK,
    MessageType.DRAIN,
    MessageType.PING,
    MessageType.PONG,
    MessageType.GOODBYE,
    MessageType.REJECT,
  ),
  /** After a Goodbye or Reject was received: the peer promised to send nothing more. */
  CLOSED: 0,
  ANY: typeMask(1, 2, 3, 4, 5, 6, 7, 8, 9),
} as const;

/**
 * agent_id, incarnation and enricher_id use [A-Za-z0-9._:-]: pod names fit, and ids contain
 * no '/' (the record_id separator), no CSV specials and nothing a log or label must escape.
 */
export function isIdChar(c: number): boolean {
  return (
    (c >= 0x61 && c <= 0x7a) || // a-z
    (c >= 0x41 && c <= 0x5a) || // A-Z
    (c >= 0x30 && c <= 0x3a) || // 0-9 and ':'
    c === 0x2d || // '-'
    c === 0x2e || // '.'
    c === 0x5f // '_'
  );
}

/** True when `id` is 1..maxLength characters, all from the id alphabet. */
export function isValidId(id: string, maxLength: number): boolean {
  if (id.length < 1 || id.length > maxLength) return false;
  for (let i = 0; i < id.length; i++) if (!isIdChar(id.charCodeAt(i))) return false;
  return true;
}
