// kube-proxy's data plane for one ClusterIP Service, written into a test bed's own network
// namespace the way kube-proxy writes it, so new connections to the ClusterIP are spread over
// the ready pods by the kernel exactly as in a cluster, and conntrack keeps an established
// connection on the pod it first reached when the endpoints change:
// - iptables mode: KUBE-SERVICES -> KUBE-SVC-<hash> with `-m statistic --mode random
//   --probability 1/(n-i)` jumps to KUBE-SEP-<hash> DNAT chains; the whole nat (and filter)
//   table rewritten atomically by one `iptables-restore` (kube-proxy's syncProxyRules does the
//   same; chain names are sha256 -> base32 -> 16 chars of "namespace/name:port" + protocol).
// - nftables mode: table `ip kube-proxy`, a `service-ips` verdict map keyed on
//   daddr . l4proto . dport, a service chain `numgen random mod N vmap { i : goto endpoint-i }`,
//   endpoint chains that DNAT; replaced atomically by one `nft -f` transaction that adds,
//   deletes and re-creates the table.
// - haproxy mode: the older stand-in (loadtest/haproxy.ts) run inside the same namespace and
//   bound to the ClusterIP, behind the same interface.
// With no ready endpoint both kernel modes reject new connections, as kube-proxy does.

import { createHash } from 'node:crypto';
import net from 'node:net';
import { BedError } from './bed-errors';
import { Haproxy } from './haproxy';
import type { Netns } from './netns';

export type ProxyMode = 'iptables' | 'nftables' | 'haproxy';
export const PROXY_MODES: readonly ProxyMode[] = ['iptables', 'nftables', 'haproxy'];

export interface ServiceSpec {
  /** Service namespace and name, used in chain names and comments as kube-proxy does. */
  namespace: string;
  name: string;
  /** Port name in the Service spec (kube-proxy's servicePortName is ns/name:portName). */
  portName: string;
  clusterIP: string;
  /** Service port == target port here: every pod listens on the same port at its own address. */
  port: number;
}

/** What a test bed needs from kube-proxy: the set of ready endpoints, applied atomically. */
export interface ServiceProxy {
  readonly mode: ProxyMode;
  readonly service: ServiceSpec;
  /** Ready pods' addresses; new connections go only to these, established ones stay put. */
  setEndpoints(addrs: readonly string[]): Promise<void>;
  endpoints(): readonly string[];
  /** Removes the rules (or stops haproxy). Idempotent. */
  close(): Promise<void>;
}

// RFC 4648 base32, as Go's base32.StdEncoding that kube-proxy uses for chain names.
const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
function base32(buf: Buffer): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of buf) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += B32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += B32[(value << (5 - bits)) & 31];
  return out;
}

function hash16(s: string): string {
  return base32(createHash('sha256').update(s).digest()).slice(0, 16);
}

function servicePortName(s: ServiceSpec): string {
  return `${s.namespace}/${s.name}:${s.portName}`;
}

export function svcChainName(s: ServiceSpec): string {
  return `KUBE-SVC-${hash16(servicePortName(s) + 'tcp')}`;
}

export function sepChainName(s: ServiceSpec, endpoint: string): string {
  return `KUBE-SEP-${hash16(servicePortName(s) + 'tcp' + `${endpoint}:${s.port}`)}`;
}

function validate(s: ServiceSpec, addrs: readonly string[]): void {
  if (!net.isIPv4(s.clusterIP)) throw new BedError('BED_INVALID_ARGUMENT', `clusterIP '${s.clusterIP}'`);
  if (!Number.isInteger(s.port) || s.port < 1 || s.port > 65535)
    throw new BedError('BED_INVALID_ARGUMENT', `port ${s.port}`);
  for (const n of [s.namespace, s.name, s.portName])
    if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(n))
      throw new BedError('BED_INVALID_ARGUMENT', `'${n}' is not a DNS label`);
  for (const a of addrs) if (!net.isIPv4(a)) throw new BedError('BED_INVALID_ARGUMENT', `endpoint '${a}'`);
  if (new Set(addrs).size !== addrs.length) throw new BedError('BED_INVALID_ARGUMENT', 'duplicate endpoints');
}

/**
 * The iptables-restore input for `endpoints` (pure): nat and filter tables, both replaced whole.
 * Rule i of n jumps with probability 1/(n-i), so each endpoint gets 1/n of new connections;
 * the last one is unconditional. Probabilities are printed with 10 decimals as kube-proxy does.
 */
export function iptablesRules(s: ServiceSpec, endpoints: readonly string[]): string {
  validate(s, endpoints);
  const spn = servicePortName(s);
  const svc = svcChainName(s);
  const seps = endpoints.map((e) => sepChainName(s, e));
  const nat = ['*nat', ':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]'];
  nat.push(':POSTROUTING ACCEPT [0:0]', ':KUBE-SERVICES - [0:0]', ':KUBE-MARK-MASQ - [0:0]');
  const filter = ['*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]'];
  filter.push(':KUBE-SERVICES - [0:0]');
  if (endpoints.length > 0) nat.push(`:${svc} - [0:0]`, ...seps.map((c) => `:${c} - [0:0]`));
  nat.push(
    '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000',
  );
  filter.push(
    '-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
  );
  const dst = `-d ${s.clusterIP}/32 -p tcp -m comment --comment "${spn} cluster IP" -m tcp --dport ${s.port}`;
  if (endpoints.length === 0) {
    filter.push(
      `-A KUBE-SERVICES -d ${s.clusterIP}/32 -p tcp -m comment --comment "${spn} has no endpoints" -m tcp --dport ${s.port} -j REJECT --reject-with icmp-port-unreachable`,
    );
  } else {
    nat.push(`-A KUBE-SERVICES ${dst} -j ${svc}`);
    const n = endpoints.length;
    endpoints.forEach((e, i) => {
      const comment = `-m comment --comment "${spn} -> ${e}:${s.port}"`;
      if (i < n - 1) {
        const p = (1 / (n - i)).toFixed(10);
        nat.push(`-A ${svc} ${comment} -m statistic --mode random --probability ${p} -j ${seps[i]}`);
      } else nat.push(`-A ${svc} ${comment} -j ${seps[i]}`);
    });
    endpoints.forEach((e, i) => {
      const comment = `-m comment --comment "${spn}"`;
      // Hairpin: a pod reaching itself through the Service is masqueraded in a cluster.
      nat.push(`-A ${seps[i]} -s ${e}/32 ${comment} -j KUBE-MARK-MASQ`);
      nat.push(`-A ${seps[i]} -p tcp ${comment} -m tcp -j DNAT --to-destination ${e}:${s.port}`);
    });
  }
  nat.push('COMMIT');
  filter.push('COMMIT');
  return [...filter, ...nat, ''].join('\n');
}

/** nftables chain-name suffix: kube-proxy's "<hash8>-ns/name/tcp/portName". */
function nftServiceChain(s: ServiceSpec): string {
  return `service-${hash16(servicePortName(s) + 'tcp').slice(0, 8)}-${s.namespace}/${s.name}/tcp/${s.portName}`;
}

function nftEndpointChain(s: ServiceSpec, e: string): string {
  const h = hash16(servicePortName(s) + 'tcp' + `${e}:${s.port}`).slice(0, 8);
  return `endpoint-${h}-${s.namespace}/${s.name}/tcp/${s.portName}__${e}/${s.port}`;
}

export const NFT_TABLE = 'kube-proxy';

/**
 * The `nft -f` input for `endpoints` (pure). One transaction: `add table` (so the delete cannot
 * fail on the first run), `delete table`, then the whole table again; nft applies it atomically.
 */
export function nftablesRules(s: ServiceSpec, endpoints: readonly string[]): string {
  validate(s, endpoints);
  const key = `${s.clusterIP} . tcp . ${s.port}`;
  const svc = nftServiceChain(s);
  const eps = endpoints.map((e) => nftEndpointChain(s, e));
  const lines = [
    `add table ip ${NFT_TABLE}`,
    `delete table ip ${NFT_TABLE}`,
    `table ip ${NFT_TABLE} {`,
    '  map service-ips {',
    '    type ipv4_addr . inet_proto . inet_service : verdict;',
    ...(endpoints.length > 0 ? [`    elements = { ${key} : goto ${svc} };`] : []),
    '  }',
    '  map no-endpoint-services {',
    '    type ipv4_addr . inet_proto . inet_service : verdict;',
    ...(endpoints.length === 0 ? [`    elements = { ${key} : goto reject-chain };`] : []),
    '  }',
    '  chain reject-chain {',
    '    reject;',
    '  }',
    '  chain filter-output {',
    '    type filter hook output priority -110; policy accept;',
    '    ct state new ip daddr . meta l4proto . th dport vmap @no-endpoint-services;',
    '  }',
    '  chain nat-output {',
    '    type nat hook output priority -100; policy accept;',
    '    jump services;',
    '  }',
    '  chain services {',
    '    ip daddr . meta l4proto . th dport vmap @service-ips;',
    '  }',
  ];
  if (endpoints.length > 0) {
    const vmap = eps.map((c, i) => `${i} : goto ${c}`).join(', ');
    lines.push(`  chain ${svc} {`, `    numgen random mod ${endpoints.length} vmap { ${vmap} };`, '  }');
    endpoints.forEach((e, i) => {
      lines.push(`  chain ${eps[i]} {`);
      lines.push(`    ip saddr ${e} mark set mark or 0x4000;`);
      lines.push(`    meta l4proto tcp dnat to ${e}:${s.port};`, '  }');
    });
  }
  lines.push('}', '');
  return lines.join('\n');
}

abstract class KernelProxy implements ServiceProxy {
  abstract readonly mode: ProxyMode;
  readonly service: ServiceSpec;
  protected readonly netns: Netns;
  private current: readonly string[] = [];
  private closed = false;
  // Serialises rewrites: each setEndpoints is one whole-table replacement, applied in call order.
  private queue: Promise<void> = Promise.resolve();

  constructor(netns: Netns, service: ServiceSpec) {
    validate(service, []);
    this.netns = netns;
    this.service = service;
  }

  protected abstract apply(endpoints: readonly string[]): Promise<void>;
  protected abstract clear(): Promise<void>;

  setEndpoints(addrs: readonly string[]): Promise<void> {
    if (this.closed) return Promise.reject(new BedError('BED_CLOSED', `${this.mode} proxy closed`));
    validate(this.service, addrs);
    const next = [...addrs];
    const run = this.queue.then(async () => {
      await this.apply(next);
      this.current = next;
    });
    this.queue = run.catch(() => {});
    return run;
  }

  endpoints(): readonly string[] {
    return this.current;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue;
    if (this.netns.exists()) await this.clear();
  }
}

export class IptablesProxy extends KernelProxy {
  readonly mode = 'iptables' as const;

  protected async apply(endpoints: readonly string[]): Promise<void> {
    await this.netns.run(['iptables-restore', '-w', '5'], iptablesRules(this.service, endpoints));
  }

  protected async clear(): Promise<void> {
    await this.netns.run(['iptables-restore', '-w', '5'], '*filter\nCOMMIT\n*nat\nCOMMIT\n');
  }
}

export class NftablesProxy extends KernelProxy {
  readonly mode = 'nftables' as const;

  protected async apply(endpoints: readonly string[]): Promise<void> {
    await this.netns.run(['nft', '-f', '-'], nftablesRules(this.service, endpoints));
  }

  protected async clear(): Promise<void> {
    await this.netns.run(['nft', '-f', '-'], `add table ip ${NFT_TABLE}\ndelete table ip ${NFT_TABLE}\n`);
  }
}

/** haproxy inside the namespace, bound to ClusterIP:port; endpoints map onto its server slots. */
export class HaproxyProxy implements ServiceProxy {
  readonly mode = 'haproxy' as const;
  readonly service: ServiceSpec;
  private readonly haproxy: Haproxy;
  private readonly slotOf = new Map<string, number>();
  private current: readonly string[] = [];

  private constructor(service: ServiceSpec, haproxy: Haproxy) {
    this.service = service;
    this.haproxy = haproxy;
  }

  static async start(netns: Netns, service: ServiceSpec, maxEndpoints = 16): Promise<HaproxyProxy> {
    validate(service, []);
    const h = new Haproxy({
      port: service.port,
      slots: maxEndpoints,
      bindAddress: service.clusterIP,
      argvPrefix: netns.execArgv([]),
    });
    await h.start();
    return new HaproxyProxy(service, h);
  }

  get pid(): number | undefined {
    return this.haproxy.pid;
  }

  async setEndpoints(addrs: readonly string[]): Promise<void> {
    validate(this.service, addrs);
    const want = new Set(addrs);
    for (const [addr, slot] of this.slotOf) {
      if (!want.has(addr)) {
        await this.haproxy.removeEndpoint(slot);
        this.slotOf.delete(addr);
      }
    }
    const used = new Set(this.slotOf.values());
    for (const addr of addrs) {
      if (this.slotOf.has(addr)) continue;
      let slot = 1;
      while (used.has(slot)) slot++;
      if (slot > this.haproxy.slots)
        throw new BedError('BED_INVALID_ARGUMENT', `more than ${this.haproxy.slots} endpoints`);
      await this.haproxy.addEndpoint(slot, this.service.port, addr);
      this.slotOf.set(addr, slot);
      used.add(slot);
    }
    this.current = [...addrs];
  }

  endpoints(): readonly string[] {
    return this.current;
  }

  close(): Promise<void> {
    return this.haproxy.stop();
  }
}

/** The proxy for `mode`, with no endpoints yet (new connections rejected until setEndpoints). */
export async function startServiceProxy(
  mode: ProxyMode,
  netns: Netns,
  service: ServiceSpec,
): Promise<ServiceProxy> {
  if (mode === 'haproxy') return HaproxyProxy.start(netns, service);
  const p = mode === 'iptables' ? new IptablesProxy(netns, service) : new NftablesProxy(netns, service);
  await p.setEndpoints([]);
  return p;
}

export interface ConntrackEntry {
  src: string;
  sport: number;
  /** Original destination (the ClusterIP). */
  dst: string;
  dport: number;
  /** Where the connection really goes: the reply's source, i.e. the pod after DNAT. */
  replySrc: string;
  state: string;
}

/** TCP conntrack entries in the namespace whose original destination is `clusterIP`. */
export async function conntrackEntries(netns: Netns, clusterIP: string): Promise<ConntrackEntry[]> {
  const { stdout } = await netns.run(['conntrack', '-L', '-p', 'tcp', '--orig-dst', clusterIP]);
  const out: ConntrackEntry[] = [];
  for (const line of stdout.split('\n')) {
    const m =
      /^tcp\s+\d+\s+\d+\s+(\S+)\s+src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+)(?: \[\w+\])? src=(\S+) dst=\S+ sport=\d+ dport=\d+/.exec(
        line,
      );
    if (!m) continue;
    out.push({
      state: m[1]!,
      src: m[2]!,
      dst: m[3]!,
      sport: Number(m[4]),
      dport: Number(m[5]),
      replySrc: m[6]!,
    });
  }
  return out;
}
