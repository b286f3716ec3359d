// The handshake budget of both servers (the dnstap listener, common/framestream-server.ts,
// and the enricher's link server): accepted sockets still in their TLS or protocol handshake,
// oldest first (a Map keeps insertion order), so that a flood of half-open connections evicts
// the oldest instead of growing without bound. Every lookup is O(1), both ways (a flood holds
// thousands of entries), and the raw socket under a TLSSocket is found again by its peer's
// address and port (tls.Server wraps the socket it was given in a new one).

import type net from 'node:net';
import type tls from 'node:tls';

export class HandshakeTable<C> {
  /** Raw socket -> its connection, or null while its TLS handshake runs. */
  private readonly byRaw = new Map<net.Socket, C | null>();
  private readonly rawOfConn = new Map<C, net.Socket>();
  /** Raw sockets in their TLS handshake by "address port". */
  private readonly tlsPending = new Map<string, net.Socket>();

  /** `onSize` is told the new count after every change (the servers' stats gauge). */
  constructor(private readonly onSize: (handshaking: number) => void) {}

  get size(): number {
    return this.byRaw.size;
  }

  has(raw: net.Socket): boolean {
    return this.byRaw.has(raw);
  }

  /**
   * Takes a newly accepted socket into the budget before any connection exists for it.
   * `tls`: it is about to be handed to a tls.Server, and rawUnder() will find it again.
   * It leaves the budget by itself if it closes before a connection is attached.
   */
  admit(raw: net.Socket, tls: boolean): void {
    this.byRaw.set(raw, null);
    if (tls) this.tlsPending.set(pendingKey(raw), raw);
    this.onSize(this.byRaw.size);
    raw.once('close', () => {
      if (this.byRaw.get(raw) === null) this.forget(raw);
    });
  }

  /** The accepted socket under a TLSSocket whose handshake finished; null once evicted. */
  rawUnder(socket: tls.TLSSocket): net.Socket | null {
    return this.tlsPending.get(pendingKey(socket)) ?? null;
  }

  /** A TLS handshake failed: its raw socket leaves the budget (nothing if it was evicted). */
  forgetUnder(socket: tls.TLSSocket): void {
    const raw = this.rawUnder(socket);
    if (raw !== null) this.forget(raw);
  }

  /** `conn` now speaks on `raw` (admitted or not) and is in its protocol handshake. */
  attach(raw: net.Socket, conn: C): void {
    this.dropPending(raw);
    this.byRaw.set(raw, conn);
    this.rawOfConn.set(conn, raw);
    this.onSize(this.byRaw.size);
  }

  /** `conn` is past its handshake, or closed: it no longer counts (nothing if it never did). */
  release(conn: C): void {
    const raw = this.rawOfConn.get(conn);
    if (raw !== undefined) this.forget(raw);
  }

  /** Drops a socket (and its connection, if any) from the budget. */
  forget(raw: net.Socket): void {
    const conn = this.byRaw.get(raw);
    this.byRaw.delete(raw);
    if (conn) this.rawOfConn.delete(conn);
    this.dropPending(raw);
    this.onSize(this.byRaw.size);
  }

  /** Takes the oldest entry out of the budget and returns it (the caller closes it); null when empty. */
  evictOldest(): { raw: net.Socket; conn: C | null } | null {
    const oldest = this.byRaw.entries().next();
    if (oldest.done) return null;
    const [raw, conn] = oldest.value;
    this.forget(raw);
    return { raw, conn };
  }

  /** Destroys the sockets no connection speaks on yet (their TLS handshake is cut short). */
  destroyUnattached(): void {
    for (const [raw, conn] of this.byRaw) if (conn === null) raw.destroy();
  }

  private dropPending(raw: net.Socket): void {
    const key = pendingKey(raw);
    if (this.tlsPending.get(key) === raw) this.tlsPending.delete(key);
  }
}

function pendingKey(socket: net.Socket): string {
  return `${socket.remoteAddress} ${socket.remotePort}`;
}
