// Errors of the cluster test bed (network namespaces, kube-proxy data planes, CPU-limited pods,
// the HPA stand-in): one class with a stable `code` that tests and callers assert on.

import { CodedError, type CodeOf } from '../proto/kit/index';

export const BedErrorCode = {
  /** A command (ip, iptables-restore, nft, conntrack) exited non-zero or could not start. */
  COMMAND_FAILED: 'BED_COMMAND_FAILED',
  /** A namespace, cgroup or proxy was used after remove()/close(). */
  CLOSED: 'BED_CLOSED',
  /** An argument is out of range or malformed (address, CPU limit, endpoint count ...). */
  INVALID_ARGUMENT: 'BED_INVALID_ARGUMENT',
  /** The machine cannot provide the feature (no cgroup cpu controller, no CFS bandwidth ...). */
  UNSUPPORTED: 'BED_UNSUPPORTED',
  /** A helper process (probe, pod) did not answer in time or answered something unexpected. */
  PROBE_FAILED: 'BED_PROBE_FAILED',
} as const;
export type BedErrorCode = CodeOf<typeof BedErrorCode>;

export class BedError extends CodedError<BedErrorCode> {
  override readonly name = 'BedError';
}
