// Typed errors for dnstap payload decoding. Callers branch on `code` (stable, part of the
// contract: metrics labels and tests use it), never on the message text. A decode error
// condemns one frame only; the stream it came from stays usable.

import { CodedError, type CodedErrorOptions, type CodeOf, isCoded } from '../kit/errors';

export const DnstapErrorCode = {
  /** The frame ends inside a tag, a varint, a fixed32 or a length-delimited field. */
  TRUNCATED: 'DNSTAP_TRUNCATED',
  /**
   * A wire type protobuf does not define (6, 7) or one we refuse: groups (3, 4). dnstap
   * never uses groups, and skipping them needs a stack of open field numbers.
   */
  BAD_WIRE_TYPE: 'DNSTAP_BAD_WIRE_TYPE',
  /** Field number 0, which protobuf reserves as invalid. */
  BAD_FIELD_NUMBER: 'DNSTAP_BAD_FIELD_NUMBER',
  /** A varint longer than 10 bytes, or a tag that does not fit in 32 bits. */
  VARINT_OVERFLOW: 'DNSTAP_VARINT_OVERFLOW',
  /**
   * A length prefix of 2^31 or more, or one that stays inside the frame but runs past the
   * end of the enclosing Message (its own length prefix was wrong).
   */
  BAD_LENGTH: 'DNSTAP_BAD_LENGTH',
  /**
   * Raised only by requireTypes(), never by decodeDnstap(): Dnstap.type is absent, or a
   * Message is present without Message.type (both `required` in dnstap.proto).
   */
  MISSING_TYPE: 'DNSTAP_MISSING_TYPE',
} as const;

export type DnstapErrorCode = CodeOf<typeof DnstapErrorCode>;

export class DnstapDecodeError extends CodedError<DnstapErrorCode> {
  override readonly name = 'DnstapDecodeError';
  /** Absolute offset in the decoded buffer where the problem was found; -1 if none. */
  readonly offset: number;

  constructor(code: DnstapErrorCode, message: string, offset = -1, options?: CodedErrorOptions) {
    super(code, message, options);
    this.offset = offset;
  }
}

/** True for a DnstapDecodeError, optionally with the given code. */
export function isDnstapDecodeError(err: unknown, code?: DnstapErrorCode): err is DnstapDecodeError {
  return isCoded(err, DnstapDecodeError, code);
}
