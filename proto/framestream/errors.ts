// Typed errors for Frame Streams. Callers branch on `code` (stable, part of the contract,
// used in metrics labels and tests), never on the message text.

import { CodedError, type CodeOf, isCoded } from '../kit/errors';
import { checkInt, checkKnownKeys } from '../kit/options';

export const FramestreamErrorCode = {
  /** A control frame announced a control length above MAX_CONTROL_FRAME_SIZE. */
  CONTROL_TOO_LARGE: 'FSTRM_CONTROL_TOO_LARGE',
  /** A control frame is structurally invalid (short, bad field, bad field count). */
  CONTROL_MALFORMED: 'FSTRM_CONTROL_MALFORMED',
  /** A control frame carries a type the protocol does not define. */
  UNKNOWN_CONTROL: 'FSTRM_UNKNOWN_CONTROL',
  /** A valid control frame arrived in a state where the protocol does not allow it. */
  UNEXPECTED_CONTROL: 'FSTRM_UNEXPECTED_CONTROL',
  /** A data frame arrived before START or after STOP. */
  UNEXPECTED_DATA: 'FSTRM_UNEXPECTED_DATA',
  /** The peer does not offer (or does not accept) our content type. */
  CONTENT_TYPE_MISMATCH: 'FSTRM_CONTENT_TYPE_MISMATCH',
  /** Input ended inside a frame, or a file ended without STOP. */
  TRUNCATED: 'FSTRM_TRUNCATED',
  /** Encoding: a payload is empty or larger than a data frame may be. */
  FRAME_TOO_LARGE: 'FSTRM_FRAME_TOO_LARGE',
  /** An option or argument is invalid (names the field). */
  INVALID_ARGUMENT: 'FSTRM_INVALID_ARGUMENT',
  /** An API was used out of order (e.g. write() from inside a callback, data after stop()). */
  INVALID_STATE: 'FSTRM_INVALID_STATE',
} as const;

export type FramestreamErrorCode = CodeOf<typeof FramestreamErrorCode>;

export interface FramestreamErrorOptions {
  /** Underlying error, when this one wraps another. */
  cause?: unknown;
  /** Absolute byte offset in the stream of the frame at fault, when known. */
  offset?: number;
}

export class FramestreamError extends CodedError<FramestreamErrorCode> {
  override readonly name = 'FramestreamError';
  /** Absolute byte offset in the stream of the frame at fault; -1 when not applicable. */
  readonly offset: number;

  constructor(code: FramestreamErrorCode, message: string, options?: FramestreamErrorOptions) {
    super(code, message, options);
    this.offset = options?.offset ?? -1;
  }
}

/** True for a FramestreamError, optionally with the given code. */
export function isFramestreamError(err: unknown, code?: FramestreamErrorCode): err is FramestreamError {
  return isCoded(err, FramestreamError, code);
}

const invalidArgument = (message: string) =>
  new FramestreamError(FramestreamErrorCode.INVALID_ARGUMENT, message);

/**
 * Validates an options object at construction: rejects unknown keys by name so that a typo
 * (`maxFrameSize` for `maxDataFrameSize`) fails loudly instead of silently using a default.
 */
export function rejectUnknownOptions(
  what: string,
  options: object | undefined,
  allowed: readonly string[],
): void {
  checkKnownKeys(what, options, allowed, invalidArgument);
}

/** Validates an integer option in [min, max], naming the field in the error. */
export function checkIntOption(what: string, field: string, value: number, min: number, max: number): number {
  return checkInt(`${what}: ${field}`, value, min, max, invalidArgument);
}
