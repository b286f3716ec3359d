// Plain counters of the link server, updated on the connection paths and read by the
// metrics collector on scrape (enricher/metrics.ts); no prom-client calls per batch.

/** Why a link connection ended; a metric label, so the set is small and stable. */
export type LinkCloseReason =
  | 'goodbye' // the agent said Goodbye (and we sent the last acks)
  | 'peer-closed' // EOF or reset without Goodbye
  | 'rejected' // we sent Reject (handshake refused, too many connections ...)
  | 'protocol-error'
  | 'handshake-timeout'
  | 'handshake-evicted' // cut in its handshake to admit a newer one (handshaking budget full)
  | 'keepalive-timeout'
  | 'drain-deadline' // still open when the drain deadline passed
  | 'output-failed' // the chunk writer failed: nothing more can be acknowledged
  | 'server-closing'
  | 'socket-error';

export class LinkServerStats {
  connectionsOpen = 0;
  /** Connections whose socket is paused for backpressure (writer or unacked bytes). */
  connectionsPaused = 0;
  /** Times a connection stopped being read for backpressure. */
  pauses = 0;
  /** TCP (or TLS) connections accepted, before any check. */
  connectionsAccepted = 0;
  /** Handshakes that ended in Welcome. */
  handshakesCompleted = 0;
  /** Rejects sent (or TLS handshakes failed) by reason: Reject code names, lower case, and `tls`. */
  readonly rejected = new Map<string, number>();
  readonly closed = new Map<string, number>();
  /** LinkProtocolError codes that closed a connection. */
  readonly protocolErrors = new Map<string, number>();
  handshakeTimeouts = 0;
  /** Connections in their TLS or Hello handshake now (bounded by maxHandshaking). */
  connectionsHandshaking = 0;
  keepaliveTimeouts = 0;
  batchesReceived = 0;
  batchesAcked = 0;
  /** Records in received batches, and those the pipeline dropped (undecodable dnstap). */
  recordsIn = 0;
  recordsDropped = 0;
  /** Socket bytes. */
  bytesIn = 0;
  bytesOut = 0;
  drainsSent = 0;
  /** Drains sent by cause: `shutdown` (SIGTERM) or `overload` (overload.ts). */
  readonly drainsByReason = new Map<string, number>();
  pingsSent = 0;
}
