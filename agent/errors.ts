// Typed errors of the agent. Callers and tests branch on `code` (stable: log fields and
// metric labels use it), never on the message text.

import { CodedError, type CodeOf } from '../proto/kit/index';

export const AgentErrorCode = {
  /** An option is missing, unknown or out of range; the message names it. */
  INVALID_OPTION: 'AGENT_INVALID_OPTION',
  /** The enricher answered the Hello with a Reject (the error carries the Reject). */
  REJECTED: 'AGENT_REJECTED',
  /** No Welcome (or Reject) within the handshake deadline, TCP/TLS connect included. */
  HANDSHAKE_TIMEOUT: 'AGENT_HANDSHAKE_TIMEOUT',
  /** The connection closed or failed (connect refused, reset, EOF, Goodbye). */
  CONNECTION_LOST: 'AGENT_CONNECTION_LOST',
  /** The peer sent nothing for three keepalive intervals. */
  KEEPALIVE_TIMEOUT: 'AGENT_KEEPALIVE_TIMEOUT',
  /** A spool directory or file could not be used. */
  SPOOL_IO: 'AGENT_SPOOL_IO',
  /** An API used out of order (start twice, add after stop). */
  INVALID_STATE: 'AGENT_INVALID_STATE',
} as const;
export type AgentErrorCode = CodeOf<typeof AgentErrorCode>;

export class AgentError extends CodedError<AgentErrorCode> {
  override readonly name = 'AgentError';
}

/** A Reject from the enricher, as an error the dial loop can classify. */
export class RejectedError extends AgentError {
  constructor(
    readonly rejectCode: number,
    readonly rejectName: string,
    readonly retryAfterMs: number,
    readonly supportedVersions: string,
    message: string,
  ) {
    super(AgentErrorCode.REJECTED, message);
  }
}

export function invalidOption(message: string): AgentError {
  return new AgentError(AgentErrorCode.INVALID_OPTION, message);
}
