// Typed errors for policy documents. Callers (the file loader, the HTTP poller) keep the
// last good policy when any of these is thrown and report `code` in logs and metrics, so
// codes are stable API; the message names the source and the offending field path.

import { CodedError, type CodeOf } from '../../proto/kit/index';

export const PolicyErrorCode = {
  /** The file or URL body could not be read. */
  IO: 'POLICY_IO',
  /** Gzip magic present but the stream is corrupt or truncated. */
  GZIP: 'POLICY_GZIP',
  /** The (decompressed) document exceeds MAX_DOCUMENT_BYTES. */
  TOO_LARGE: 'POLICY_TOO_LARGE',
  /** Not UTF-8, or not JSON. */
  BAD_JSON: 'POLICY_BAD_JSON',
  /** Valid JSON that breaks the schema: wrong type, unknown key, bad suffix or CIDR. */
  INVALID: 'POLICY_INVALID',
  /** Two entries normalise to the same suffix or the same network. */
  DUPLICATE: 'POLICY_DUPLICATE',
  /** The load worker thread died (e.g. out of memory) without an answer. */
  INTERNAL: 'POLICY_INTERNAL',
} as const;

export type PolicyErrorCode = CodeOf<typeof PolicyErrorCode>;

export class PolicyError extends CodedError<PolicyErrorCode> {
  override readonly name = 'PolicyError';
  /** Where the document came from (file path or URL), as given by the caller. */
  readonly source: string;
  /** JSON path of the offending value, e.g. `domains[12].suffix`; '' for whole-document errors. */
  readonly path: string;
  /** The message without the source and path prefix. */
  readonly problem: string;

  constructor(code: PolicyErrorCode, source: string, path: string, problem: string, cause?: unknown) {
    super(code, `policy ${source}: ${path === '' ? '' : path + ': '}${problem}`, { cause });
    this.source = source;
    this.path = path;
    this.problem = problem;
  }
}

/**
 * Validation helpers throw this lightweight error without knowing the source or the entry
 * index; document.ts catches it once per entry and re-throws a full PolicyError. Keeps the
 * per-entry validators free of path-string building on the (1M-entry) success path.
 */
export class FieldError extends CodedError<PolicyErrorCode> {}
