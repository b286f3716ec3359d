// Who may connect to an exposed dnstap input, decided before a single byte is read: a
// source allow-list (--dnstap-allow CIDR,...), and a refusal log that names each refused
// source once per window instead of once per connection (a flood must not flood the logs).

import net from 'node:net';

/** Why a connection was refused at accept (a metrics label: keep the set small and stable). */
export type RefuseReason =
  | 'max-connections'
  | 'server-closing'
  | 'not-allowed'
  | 'handshake-evicted'
  | 'tls-handshake';

/**
 * Handshake deadlines are spread over [deadline, deadline x (1 + this)]: a flood opened within
 * a second would otherwise expire, be cut and re-open all at once, and a producer connecting in
 * that burst waits behind it (loadtest/attack.ts --settle 9.8).
 */
export const HANDSHAKE_DEADLINE_SPREAD = 0.5;

/** The deadline of one connection's handshake (see HANDSHAKE_DEADLINE_SPREAD). */
export function spreadDeadline(ms: number): number {
  return Math.round(ms * (1 + Math.random() * HANDSHAKE_DEADLINE_SPREAD));
}

/** A refused source is logged at most once per this window (with the count it hid). */
export const REFUSAL_LOG_WINDOW_MS = 60_000;
/** Sources remembered by the refusal log; beyond it the table starts over (bounded memory). */
export const REFUSAL_LOG_MAX_SOURCES = 1024;

/**
 * Parses "10.0.0.0/8,::1,192.0.2.7" into a BlockList. A bare address means that host only.
 * Throws an Error naming the bad entry; the caller wraps it in its typed error.
 */
export function parseAllowList(entries: readonly string[]): net.BlockList {
  const list = new net.BlockList();
  for (const raw of entries) {
    const entry = raw.trim();
    const slash = entry.indexOf('/');
    const addr = slash < 0 ? entry : entry.slice(0, slash);
    const family = net.isIPv4(addr) ? 'ipv4' : net.isIPv6(addr) ? 'ipv6' : null;
    if (family === null) throw new Error(`'${raw}' is not an IP address or CIDR`);
    const max = family === 'ipv4' ? 32 : 128;
    const prefix = slash < 0 ? max : Number(entry.slice(slash + 1));
    if (!Number.isInteger(prefix) || prefix < 0 || prefix > max || entry.slice(slash + 1) === '') {
      throw new Error(`'${raw}': prefix length must be 0..${max}`);
    }
    list.addSubnet(addr, prefix, family);
    // An IPv4 client on a dual-stack listener shows up as ::ffff:a.b.c.d.
    if (family === 'ipv4') list.addSubnet(`::ffff:${addr}`, 96 + prefix, 'ipv6');
  }
  return list;
}

/** True when `address` (as socket.remoteAddress gives it) is on the list. */
export function allowed(list: net.BlockList, address: string | undefined): boolean {
  if (address === undefined) return false;
  return list.check(address, net.isIPv6(address) ? 'ipv6' : 'ipv4');
}

interface Entry {
  loggedAt: number;
  hidden: number;
}

/**
 * Rate-limited refusal logging: the first refusal of a (source, reason) is logged, the next
 * ones within REFUSAL_LOG_WINDOW_MS are only counted and reported with the next line.
 */
export class RefusalLog {
  private readonly seen = new Map<string, Entry>();

  constructor(
    private readonly emit: (fields: Record<string, unknown>) => void,
    private readonly now: () => number = Date.now,
  ) {}

  refused(source: string, reason: RefuseReason | string, fields: Record<string, unknown>): void {
    const key = `${reason} ${source}`;
    const t = this.now();
    const e = this.seen.get(key);
    if (e !== undefined && t - e.loggedAt < REFUSAL_LOG_WINDOW_MS) {
      e.hidden++;
      return;
    }
    if (e === undefined && this.seen.size >= REFUSAL_LOG_MAX_SOURCES) this.seen.clear();
    this.emit({ source, reason, ...fields, suppressedSinceLastLog: e?.hidden ?? 0 });
    this.seen.set(key, { loggedAt: t, hidden: 0 });
  }
}
