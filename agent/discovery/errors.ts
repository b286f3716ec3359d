// Typed errors of endpoint discovery. `code` is stable: the CLI maps DISCOVERY_TARGET_* to
// exit 2, logs carry it as a field, and the watcher counts errors by it (a metric label).

import { CodedError, type CodeOf } from '../../proto/kit/index';

export const DiscoveryErrorCode = {
  /** `--discovery` does not start with `k8s://`. */
  TARGET_SCHEME: 'DISCOVERY_TARGET_SCHEME',
  /** Not NAMESPACE/SERVICE[:PORT]: missing or extra parts, query, fragment, user info. */
  TARGET_SHAPE: 'DISCOVERY_TARGET_SHAPE',
  /** The namespace is not a DNS-1123 label. */
  TARGET_NAMESPACE: 'DISCOVERY_TARGET_NAMESPACE',
  /** The service name is not a DNS-1035 label (what Kubernetes requires of Service names). */
  TARGET_SERVICE: 'DISCOVERY_TARGET_SERVICE',
  /** The port is neither an IANA service name (a Service port name) nor 1..65535. */
  TARGET_PORT: 'DISCOVERY_TARGET_PORT',
  /** A watcher option is missing or out of range; the message names it. */
  INVALID_OPTION: 'DISCOVERY_INVALID_OPTION',
  /** No usable kubeconfig / in-cluster credentials (file missing, bad YAML, no cluster). */
  CONFIG: 'DISCOVERY_CONFIG',
  /** The API server cannot be reached: refused, reset, DNS, socket closed. */
  UNREACHABLE: 'DISCOVERY_UNREACHABLE',
  /** TLS failed: unknown CA, wrong host name, expired certificate. */
  TLS: 'DISCOVERY_TLS',
  /** No response (headers, or any watch event) within the deadline. */
  TIMEOUT: 'DISCOVERY_TIMEOUT',
  /** 401: the token is wrong or expired. */
  UNAUTHORIZED: 'DISCOVERY_UNAUTHORIZED',
  /** 403: RBAC does not allow list/watch on endpointslices in the namespace. */
  FORBIDDEN: 'DISCOVERY_FORBIDDEN',
  /** 404: discovery.k8s.io/v1 is not served (Kubernetes older than 1.21) or wrong path. */
  NOT_FOUND: 'DISCOVERY_NOT_FOUND',
  /** 410: the resourceVersion we resume from is gone; we list again. */
  EXPIRED: 'DISCOVERY_EXPIRED',
  /** Any other HTTP status or watch ERROR event. */
  API: 'DISCOVERY_API_ERROR',
  /** A watch ended cleanly before it delivered anything (a proxy closing it, say). */
  WATCH_CLOSED: 'DISCOVERY_WATCH_CLOSED',
  /** An EndpointSlice has no port matching the target (or several, and none named). */
  PORT: 'DISCOVERY_PORT',
  /** An EndpointSlice we cannot use (FQDN address type, bad address). */
  SLICE: 'DISCOVERY_SLICE',
  /** start() twice, start() after stop(). */
  INVALID_STATE: 'DISCOVERY_INVALID_STATE',
} as const;
export type DiscoveryErrorCode = CodeOf<typeof DiscoveryErrorCode>;

export class DiscoveryError extends CodedError<DiscoveryErrorCode> {
  override readonly name = 'DiscoveryError';
  constructor(code: DiscoveryErrorCode, message: string, options?: { cause?: unknown; status?: number }) {
    super(code, message, options);
    this.status = options?.status;
  }
  /** The HTTP status when the API server answered. */
  readonly status: number | undefined;
}

/** A bad `--discovery` value (usage error: exit 2). */
export function isTargetError(err: unknown): err is DiscoveryError {
  return err instanceof DiscoveryError && err.code.startsWith('DISCOVERY_TARGET_');
}
