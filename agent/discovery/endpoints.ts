// A Service's EndpointSlices (discovery.k8s.io/v1, possibly several per Service) reduced to
// the endpoints the agent may dial: ready, not terminating, one per pod, with the target
// port, sorted and de-duplicated. Pure: no I/O, the same input always gives the same list,
// so the watcher can compare successive results to decide whether anything changed.
//
// Condition semantics (EndpointConditions in the API reference):
//   ready: nil means unknown and is to be treated as ready;
//   serving: like ready but ignoring termination (nil = serving) - we do not use it: a
//     terminating pod may still serve, but it is going away and gets no new connections;
//   terminating: nil means not terminating. A Service with publishNotReadyAddresses
//     reports ready=true even for terminating pods, hence the explicit check.

import { isIPv4, isIPv6 } from 'node:net';
import { DiscoveryErrorCode } from './errors';

/** The EndpointSlice fields we read: raw watch JSON and the client's list objects both fit. */
export interface EndpointSliceLike {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string } | null;
  addressType?: string | null;
  endpoints?: EndpointLike[] | null;
  ports?: EndpointPortLike[] | null;
}
export interface EndpointLike {
  addresses?: string[] | null;
  conditions?: { ready?: boolean | null; serving?: boolean | null; terminating?: boolean | null } | null;
  targetRef?: { kind?: string | null; name?: string | null; namespace?: string | null } | null;
  zone?: string | null;
}
export interface EndpointPortLike {
  name?: string | null;
  port?: number | null;
  protocol?: string | null;
}

/** One pod the agent may connect to. */
export interface ReadyEndpoint {
  address: string;
  port: number;
  podName?: string;
  zone?: string;
}

export type AddressFamily = 'IPv4' | 'IPv6';

export interface ReduceOptions {
  /** Port name or endpoint port number (DiscoveryTarget.port); absent: the only TCP port. */
  port?: string | number;
  /** Only this family. Absent: both; a dual-stack pod counts once, by its IPv4 address. */
  family?: AddressFamily;
}

/** Why a slice (or part of it) was not used; `message` is stable so it can be logged once. */
export interface SliceProblem {
  slice: string;
  code: typeof DiscoveryErrorCode.PORT | typeof DiscoveryErrorCode.SLICE;
  message: string;
}

export interface EndpointReduction {
  endpoints: ReadyEndpoint[];
  /** Endpoint entries left out because ready=false (and not terminating). */
  notReady: number;
  /** Endpoint entries left out because terminating=true. */
  terminating: number;
  problems: SliceProblem[];
}

/** A target for new connections: ready (nil counts as ready) and not terminating. */
export function isReadyTarget(c: EndpointLike['conditions']): boolean {
  return c?.ready !== false && c?.terminating !== true;
}

interface Candidate {
  ep: ReadyEndpoint;
  sortKey: string;
}

export function reduceEndpointSlices(
  slices: Iterable<EndpointSliceLike>,
  opts: ReduceOptions = {},
): EndpointReduction {
  const chosen = new Map<string, Candidate>();
  const problems: SliceProblem[] = [];
  let notReady = 0;
  let terminating = 0;
  for (const slice of slices) {
    const name = slice.metadata?.name ?? '(unnamed)';
    const type = slice.addressType ?? '';
    if (type !== 'IPv4' && type !== 'IPv6') {
      problems.push({
        slice: name,
        code: DiscoveryErrorCode.SLICE,
        message: `address type ${type} is not supported`,
      });
      continue;
    }
    if (opts.family !== undefined && type !== opts.family) continue;
    const port = slicePort(slice.ports, opts.port);
    if (typeof port === 'string') {
      problems.push({ slice: name, code: DiscoveryErrorCode.PORT, message: port });
      continue;
    }
    for (const e of slice.endpoints ?? []) {
      if (e.conditions?.terminating === true) {
        terminating++;
        continue;
      }
      if (!isReadyTarget(e.conditions)) {
        notReady++;
        continue;
      }
      // The controller writes exactly one address; no semantics are defined for more.
      const address = e.addresses?.[0];
      const sortKey = address === undefined ? null : addressSortKey(address, type);
      if (address === undefined || sortKey === null) {
        problems.push({
          slice: name,
          code: DiscoveryErrorCode.SLICE,
          message: `bad ${type} address ${address}`,
        });
        continue;
      }
      const ep: ReadyEndpoint = { address, port };
      const pod = e.targetRef?.kind === 'Pod' ? e.targetRef.name : undefined;
      if (pod) ep.podName = pod;
      if (e.zone) ep.zone = e.zone;
      // An endpoint may sit in two slices for a moment while the controller moves it, and a
      // dual-stack pod has one address per family: one entry per pod (or per address).
      const key = pod ? `pod/${e.targetRef?.namespace ?? ''}/${pod}` : `ip/${sortKey}/${port}`;
      const prev = chosen.get(key);
      if (prev === undefined || sortKey < prev.sortKey) chosen.set(key, { ep, sortKey });
    }
  }
  const list = [...chosen.values()].sort(
    (a, b) =>
      cmp(a.sortKey, b.sortKey) || a.ep.port - b.ep.port || cmp(a.ep.podName ?? '', b.ep.podName ?? ''),
  );
  return { endpoints: list.map((c) => c.ep), notReady, terminating, problems };
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The slice's port for `want`, or a message saying why there is none. */
function slicePort(
  ports: EndpointPortLike[] | null | undefined,
  want: string | number | undefined,
): number | string {
  // Protocol defaults to TCP; the link is TCP, so UDP/SCTP ports never qualify.
  const tcp = (ports ?? []).filter((p) => (p.protocol ?? 'TCP') === 'TCP');
  let found: EndpointPortLike | undefined;
  if (typeof want === 'string') {
    found = tcp.find((p) => p.name === want);
    if (found === undefined) return `no TCP port named ${want} (ports: ${describe(tcp)})`;
  } else if (typeof want === 'number') {
    found = tcp.find((p) => p.port === want);
    if (found === undefined) return `no TCP port ${want} (ports: ${describe(tcp)})`;
  } else {
    if (tcp.length !== 1) {
      return tcp.length === 0
        ? 'no TCP port'
        : `several TCP ports (${describe(tcp)}): name one, k8s://NAMESPACE/SERVICE:PORTNAME`;
    }
    found = tcp[0]!;
  }
  // A nil port means "all ports" (not something a Service's controller writes).
  const n = found.port;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 65535) {
    return `port ${found.name || '(unnamed)'} has no port number`;
  }
  return n;
}

function describe(ports: EndpointPortLike[]): string {
  return ports.length === 0 ? 'none' : ports.map((p) => `${p.name || '(unnamed)'}=${p.port}`).join(', ');
}

/**
 * A key that sorts addresses numerically, IPv4 before IPv6 (10.0.0.9 before 10.0.0.10),
 * and makes two spellings of one IPv6 address equal; null when `address` is not of `type`.
 */
export function addressSortKey(address: string, type: string): string | null {
  if (type === 'IPv4') return isIPv4(address) ? `4${ipv4Hex(address)}` : null;
  if (type === 'IPv6') return isIPv6(address) && !address.includes('%') ? `6${ipv6Hex(address)}` : null;
  return null;
}

function ipv4Hex(a: string): string {
  let out = '';
  for (const part of a.split('.')) out += Number(part).toString(16).padStart(2, '0');
  return out;
}

function ipv6Hex(a: string): string {
  let s = a.toLowerCase();
  const last = s.lastIndexOf(':');
  if (s.indexOf('.', last) !== -1) {
    // Embedded IPv4 tail (::ffff:10.0.0.1): rewrite it as two hex groups.
    const h = ipv4Hex(s.slice(last + 1));
    s = `${s.slice(0, last + 1)}${h.slice(0, 4)}:${h.slice(4)}`;
  }
  const gap = s.indexOf('::');
  let groups: string[];
  if (gap === -1) {
    groups = s.split(':');
  } else {
    const head = gap === 0 ? [] : s.slice(0, gap).split(':');
    const tail = gap + 2 === s.length ? [] : s.slice(gap + 2).split(':');
    groups = [...head, ...new Array<string>(8 - head.length - tail.length).fill('0'), ...tail];
  }
  return groups.map((g) => g.padStart(4, '0')).join('');
}

/** Identity of a list for change detection: a new pod on a reused IP counts as a change. */
export function endpointsKey(list: readonly ReadyEndpoint[]): string {
  return list.map((e) => `${e.address}|${e.port}|${e.podName ?? ''}`).join(',');
}

/** What `after` has that `before` had not, and the reverse (for logs). */
export function diffEndpoints(
  before: readonly ReadyEndpoint[],
  after: readonly ReadyEndpoint[],
): { added: ReadyEndpoint[]; removed: ReadyEndpoint[] } {
  const k = (e: ReadyEndpoint) => `${e.address}|${e.port}|${e.podName ?? ''}`;
  const was = new Set(before.map(k));
  const is = new Set(after.map(k));
  return { added: after.filter((e) => !was.has(k(e))), removed: before.filter((e) => !is.has(k(e))) };
}
