// Errors of the cluster test bed (network namespaces, kube-proxy data planes, CPU-limited pods,
// the HPA stand-in): one class with a stable `code` that tests and callers assert on.

export type BedErrorCode =
  /** A command (ip, iptables-restore, nft, conntrack) exited non-zero or could not start. */
  | 'BED_COMMAND_FAILED'
  /** A namespace, cgroup or proxy was used after remove()/close(). */
  | 'BED_CLOSED'
  /** An argument is out of range or malformed (address, CPU limit, endpoint count ...). */
  | 'BED_INVALID_ARGUMENT'
  /** The machine cannot provide the feature (no cgroup cpu controller, no CFS bandwidth ...). */
  | 'BED_UNSUPPORTED'
  /** A helper process (probe, pod) did not answer in time or answered something unexpected. */
  | 'BED_PROBE_FAILED';

export class BedError extends Error {
  readonly code: BedErrorCode;
  override readonly name = 'BedError';

  constructor(code: BedErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
