// Typed errors for the DNS message parser. Callers branch on `code` (stable, part of the
// contract, used as a metrics label and in tests), never on the message text.
//
// Cost under attack: DNS messages come from the network, so a flood of garbage makes every
// record an error. Measured on Node 20 (x86-64, bench-dns and a micro-benchmark):
//   throw from inside the parser, default Error (10-frame stack)   ~3-5 µs per message
//   the same without capturing a stack                             ~2.7 µs
//   a pre-built object thrown (V8 still builds a message object)   ~2-3.5 µs
//   errors recorded in the cursor, one throw at the API boundary    ~1.6 µs
//   errors recorded in the cursor, code returned (tryParse...)      ~0.06-0.1 µs
// So the parser never throws internally (see cursor.ts), tryParseDnsMessage returns the
// code for the hot path, and parseDnsMessage throws one DnsParseError built here. A shared
// pre-built error per code is not worth it (and would share `offset` between unrelated
// failures); what is worth it is skipping the stack: the stack of a wire-format error only
// ever points into the parser and says nothing that `code` and `offset` do not, and the
// message is a constant per code (no string building).
// Set `DnsParseError.captureStacks = true` while debugging to get stacks back.

import { CodedError, type CodeOf, isCoded } from '../kit/errors';

export const DnsErrorCode = {
  /** The message is shorter than the 12-byte header. */
  TRUNCATED_HEADER: 'DNS_TRUNCATED_HEADER',
  /** A field, name, record or RDATA runs past the end of the message. */
  TRUNCATED: 'DNS_TRUNCATED',
  /**
   * A label longer than 63 octets. Unreachable when decoding: the wire format has only six
   * length bits, so 0x40..0xBF are label *types* (BAD_LABEL_TYPE). Reserved for encoders.
   */
  LABEL_TOO_LONG: 'DNS_LABEL_TOO_LONG',
  /** A name exceeds 255 octets in wire format (RFC 1035 §3.1). */
  NAME_TOO_LONG: 'DNS_NAME_TOO_LONG',
  /** A compression pointer points forward, to itself, or outside the message body. */
  BAD_POINTER: 'DNS_BAD_POINTER',
  /** A name follows more compression pointers than MAX_POINTER_JUMPS. */
  POINTER_LOOP: 'DNS_POINTER_LOOP',
  /** A label type 0x40 (extended, RFC 6891 §5 deprecates it) or 0x80 (reserved). */
  BAD_LABEL_TYPE: 'DNS_BAD_LABEL_TYPE',
  /** A malformed OPT RR: non-root owner, second OPT, bad option framing, or a bad ECS option. */
  BAD_OPT: 'DNS_BAD_OPT',
} as const;

export type DnsErrorCode = CodeOf<typeof DnsErrorCode>;

const MESSAGES: Record<DnsErrorCode, string> = {
  DNS_TRUNCATED_HEADER: 'DNS message shorter than its 12-byte header',
  DNS_TRUNCATED: 'DNS message truncated',
  DNS_LABEL_TOO_LONG: 'DNS label longer than 63 octets',
  DNS_NAME_TOO_LONG: 'DNS name longer than 255 octets',
  DNS_BAD_POINTER: 'DNS compression pointer not pointing backwards into the message',
  DNS_POINTER_LOOP: 'DNS name follows too many compression pointers',
  DNS_BAD_LABEL_TYPE: 'DNS label type 0x40/0x80 is not supported',
  DNS_BAD_OPT: 'DNS OPT record or EDNS option is malformed',
};

export class DnsParseError extends CodedError<DnsErrorCode> {
  /** Capture a stack trace for each error (off: see the cost note at the top of this file). */
  static captureStacks = false;

  declare readonly name: 'DnsParseError';
  /** Byte offset, relative to the start of the DNS message, where the problem was found. */
  readonly offset: number;

  constructor(code: DnsErrorCode, offset: number) {
    if (DnsParseError.captureStacks) {
      super(code, MESSAGES[code]);
    } else {
      // Error.stackTraceLimit is read by V8 when the Error is constructed; restoring it at
      // once keeps every other error in the process unaffected.
      const limit = Error.stackTraceLimit;
      Error.stackTraceLimit = 0;
      super(code, MESSAGES[code]);
      Error.stackTraceLimit = limit;
    }
    this.offset = offset;
  }
}

// On the prototype rather than per instance: one store fewer per error.
Object.defineProperty(DnsParseError.prototype, 'name', {
  value: 'DnsParseError',
  writable: false,
  enumerable: false,
  configurable: true,
});

/** True for a DnsParseError, optionally with the given code. */
export function isDnsParseError(err: unknown, code?: DnsErrorCode): err is DnsParseError {
  return isCoded(err, DnsParseError, code);
}
