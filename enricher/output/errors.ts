// Typed errors of the CSV chunk output. Callers (readiness, logs, tests) branch on `code`,
// never on message text.

import { CodedError, type CodeOf } from '../../proto/kit/index';

export const OutputErrorCode = {
  /** The output directory (or a directory under it) cannot be created or written. */
  NOT_WRITABLE: 'OUTPUT_NOT_WRITABLE',
  /** The file system is full or over quota. */
  NO_SPACE: 'OUTPUT_NO_SPACE',
  /** Any other I/O failure (write, fsync, rename ...). */
  IO: 'OUTPUT_IO',
  /** appendRow() after close() began. */
  CLOSED: 'OUTPUT_CLOSED',
  /** A constructor option is missing, unknown or out of range. */
  INVALID_OPTION: 'OUTPUT_INVALID_OPTION',
  /** An option this runtime cannot do (zstd on a Node.js without it). */
  UNSUPPORTED: 'OUTPUT_UNSUPPORTED',
} as const;
export type OutputErrorCode = CodeOf<typeof OutputErrorCode>;

export class OutputError extends CodedError<OutputErrorCode> {
  override readonly name = 'OutputError';
  /** The file or directory the failed operation was about, when there is one. */
  readonly path: string | undefined;

  constructor(code: OutputErrorCode, message: string, options?: { cause?: unknown; path?: string }) {
    super(code, message, options);
    this.path = options?.path;
  }
}

const NOT_WRITABLE_ERRNOS = new Set(['EACCES', 'EPERM', 'EROFS', 'ENOTDIR']);
const NO_SPACE_ERRNOS = new Set(['ENOSPC', 'EDQUOT']);

/** Wraps a failed fs call so that the message names the operation and the path. */
export function ioError(op: string, path: string, err: unknown): OutputError {
  if (err instanceof OutputError) return err;
  const errno = (err as NodeJS.ErrnoException | null)?.code ?? '';
  const detail = err instanceof Error ? err.message : String(err);
  let code: OutputErrorCode = 'OUTPUT_IO';
  if (NOT_WRITABLE_ERRNOS.has(errno)) code = 'OUTPUT_NOT_WRITABLE';
  else if (NO_SPACE_ERRNOS.has(errno)) code = 'OUTPUT_NO_SPACE';
  const what = code === 'OUTPUT_NOT_WRITABLE' ? 'output not writable' : 'output I/O failed';
  return new OutputError(code, `${what}: ${op} ${path}: ${detail}`, { cause: err, path });
}

/** Awaits an fs promise, turning its failure into an OutputError about `op` on `path`. */
export async function io<T>(op: string, path: string, p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    throw ioError(op, path, err);
  }
}
