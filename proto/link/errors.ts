// Typed errors for the link protocol. Callers branch on `code` (stable, part of the
// contract: metric labels and tests use it), never on the message text.
//
// Unlike a dnstap input, where a bad frame costs one frame, every decode error on the link
// is fatal to its connection: the peer is our own agent or enricher, so the stream is out of
// sync or the peer is broken, and skipping a batch would leave its seq unacknowledged
// forever. The owner answers with Reject{PROTOCOL_ERROR} (enricher) or Goodbye (agent),
// closes, and the agent re-sends its unacknowledged batches on another connection.

import { CodedError, type CodeOf, isCoded } from '../kit/errors';

export const LinkErrorCode = {
  /** A frame length above the limit (MAX_LINK_FRAME, or MAX_CONTROL_BODY for non-Batch types). */
  FRAME_TOO_LARGE: 'LINK_FRAME_TOO_LARGE',
  /** A frame length of 0: no room for the type byte. */
  EMPTY_FRAME: 'LINK_EMPTY_FRAME',
  /** A message type byte outside the table. */
  UNKNOWN_TYPE: 'LINK_UNKNOWN_TYPE',
  /** A known type that the receiver's state does not allow (e.g. Batch before Hello). */
  UNEXPECTED_TYPE: 'LINK_UNEXPECTED_TYPE',
  /** A body that is not valid protobuf for its type, or breaks a rule of LINK.md. */
  BAD_MESSAGE: 'LINK_BAD_MESSAGE',
  /** Input ended inside a frame. */
  TRUNCATED: 'LINK_TRUNCATED',
  /** The enricher's Welcome is unusable (version outside our range, missing id). */
  BAD_WELCOME: 'LINK_BAD_WELCOME',
  /** An option or argument is invalid (names the field). */
  INVALID_ARGUMENT: 'LINK_INVALID_ARGUMENT',
  /** An API was used out of order (append() before begin(), write() after end()). */
  INVALID_STATE: 'LINK_INVALID_STATE',
} as const;

export type LinkErrorCode = CodeOf<typeof LinkErrorCode>;

export interface LinkErrorOptions {
  cause?: unknown;
  /** Absolute byte offset in the stream (decoder) or the buffer (messages); -1 if none. */
  offset?: number;
}

export class LinkProtocolError extends CodedError<LinkErrorCode> {
  override readonly name = 'LinkProtocolError';
  readonly offset: number;

  constructor(code: LinkErrorCode, message: string, options?: LinkErrorOptions) {
    super(code, message, options);
    this.offset = options?.offset ?? -1;
  }
}

/** True for a LinkProtocolError, optionally with the given code. */
export function isLinkProtocolError(err: unknown, code?: LinkErrorCode): err is LinkProtocolError {
  return isCoded(err, LinkProtocolError, code);
}

export function badMessage(message: string, offset = -1, cause?: unknown): LinkProtocolError {
  return new LinkProtocolError(LinkErrorCode.BAD_MESSAGE, message, { offset, cause });
}

export function invalidArgument(message: string): LinkProtocolError {
  return new LinkProtocolError(LinkErrorCode.INVALID_ARGUMENT, message);
}

/**
 * A hint for a first frame whose length makes no sense, naming the usual culprit: TLS
 * against a plain listener (0x16 0x03), HTTP (a health check on the wrong port), or a
 * dnstap producer aimed at the link port (Frame Streams' be32 0 escape).
 */
export function guessPeer(b0: number, b1: number, b2: number, b3: number): string {
  if (b0 === 0x16 && b1 === 0x03)
    return ' (looks like a TLS ClientHello: is TLS configured on one side only?)';
  const text = String.fromCharCode(b0, b1, b2, b3);
  if (text === 'GET ' || text === 'POST' || text === 'HEAD' || text === 'PRI ') {
    return ' (looks like HTTP: wrong port?)';
  }
  if (b0 === 0 && b1 === 0 && b2 === 0 && b3 === 0) {
    return ' (looks like a Frame Streams control frame: a dnstap producer on the link port?)';
  }
  return '';
}
