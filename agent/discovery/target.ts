// `--discovery k8s://NAMESPACE/SERVICE[:PORT]`: which Service's EndpointSlices the agent
// watches. Validated here, at start-up, with the rules the API server applies to the same
// names, so that a typo is a usage error (exit 2) and not an empty watch forever.

import { DiscoveryError, DiscoveryErrorCode } from './errors';

export const TARGET_SCHEME = 'k8s://';
/** DNS-1123 / DNS-1035 labels: namespaces and Service names. */
export const MAX_LABEL_LENGTH = 63;
/** IANA service names: Service port names (ContainerPort.name, ServicePort.name). */
export const MAX_PORT_NAME_LENGTH = 15;
/** EndpointSlices carry this label with the owning Service's name. */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

export interface DiscoveryTarget {
  namespace: string;
  service: string;
  /**
   * Which EndpointSlice port to use: a name (the Service port name) or a number (the
   * endpoint's own port, i.e. the pod's targetPort). Absent: the slice's only TCP port.
   */
  port?: string | number;
}

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const IANA_SVC_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function fail(code: DiscoveryErrorCode, text: string, why: string): never {
  throw new DiscoveryError(code, `--discovery ${JSON.stringify(text)}: ${why}`);
}

/** Parses and validates; throws DiscoveryError with a DISCOVERY_TARGET_* code. */
export function parseDiscoveryTarget(text: string): DiscoveryTarget {
  // The scheme is case-insensitive (RFC 3986); everything after it is case-sensitive.
  if (text.slice(0, TARGET_SCHEME.length).toLowerCase() !== TARGET_SCHEME) {
    fail(DiscoveryErrorCode.TARGET_SCHEME, text, 'expected k8s://NAMESPACE/SERVICE[:PORT]');
  }
  const rest = text.slice(TARGET_SCHEME.length);
  if (/[?#@\s]/.test(rest)) {
    fail(DiscoveryErrorCode.TARGET_SHAPE, text, 'no query, fragment, user info or spaces allowed');
  }
  const parts = rest.split('/');
  if (parts.length !== 2 || parts[0] === '' || parts[1] === '') {
    fail(DiscoveryErrorCode.TARGET_SHAPE, text, 'expected k8s://NAMESPACE/SERVICE[:PORT]');
  }
  const namespace = parts[0]!;
  const colon = parts[1]!.indexOf(':');
  const service = colon === -1 ? parts[1]! : parts[1]!.slice(0, colon);
  const portText = colon === -1 ? undefined : parts[1]!.slice(colon + 1);

  if (namespace.length > MAX_LABEL_LENGTH || !DNS1123_LABEL.test(namespace)) {
    fail(
      DiscoveryErrorCode.TARGET_NAMESPACE,
      text,
      `namespace ${JSON.stringify(namespace)} is not a DNS-1123 label (lower-case letters, digits ` +
        `and '-', starting and ending with a letter or digit, at most ${MAX_LABEL_LENGTH} characters)`,
    );
  }
  if (service.length > MAX_LABEL_LENGTH || !DNS1035_LABEL.test(service)) {
    fail(
      DiscoveryErrorCode.TARGET_SERVICE,
      text,
      `service ${JSON.stringify(service)} is not a valid Service name (DNS-1035 label: lower-case ` +
        `letters, digits and '-', starting with a letter, at most ${MAX_LABEL_LENGTH} characters)`,
    );
  }
  const target: DiscoveryTarget = { namespace, service };
  if (portText !== undefined) target.port = parsePort(text, portText);
  return target;
}

function parsePort(text: string, p: string): string | number {
  if (/^[0-9]+$/.test(p)) {
    const n = Number(p);
    if (n >= 1 && n <= 65535 && p[0] !== '0') return n;
    fail(DiscoveryErrorCode.TARGET_PORT, text, `port ${p} is not a port number 1..65535 (no leading zeros)`);
  }
  // IANA_SVC_NAME as Kubernetes validates port names: at least one letter, no '--'.
  if (p.length > MAX_PORT_NAME_LENGTH || !IANA_SVC_NAME.test(p) || !/[a-z]/.test(p) || p.includes('--')) {
    fail(
      DiscoveryErrorCode.TARGET_PORT,
      text,
      `port ${JSON.stringify(p)} is neither a port number nor a port name (IANA service name: ` +
        `lower-case letters, digits and single '-', at least one letter, at most ` +
        `${MAX_PORT_NAME_LENGTH} characters)`,
    );
  }
  return p;
}

/** The canonical text of a target (logs, metrics labels). */
export function formatDiscoveryTarget(t: DiscoveryTarget): string {
  return `${TARGET_SCHEME}${t.namespace}/${t.service}${t.port === undefined ? '' : `:${t.port}`}`;
}

/** The list/watch collection path of the target's EndpointSlices. */
export function endpointSlicesPath(t: DiscoveryTarget): string {
  return `/apis/discovery.k8s.io/v1/namespaces/${t.namespace}/endpointslices`;
}

/** Selects the slices the EndpointSlice controller made for this Service. */
export function serviceLabelSelector(t: DiscoveryTarget): string {
  return `${SERVICE_NAME_LABEL}=${t.service}`;
}
