// Listener plumbing for the Frame Streams server: options with defaults and validation,
// typed errors, and the unix socket file's life (stale file removal, permissions).

import { promises as fs } from 'node:fs';
import net from 'node:net';
import type tls from 'node:tls';
import {
  DEFAULT_MAX_DATA_FRAME_SIZE,
  DNSTAP_CONTENT_TYPE,
  MAX_CONFIGURABLE_DATA_FRAME_SIZE,
} from '../proto/framestream';
import { CodedError, type CodeOf, checkInt } from '../proto/kit/index';
import { parseAllowList } from './framestream-admission';
import type { FrameSink } from './framestream-connection';
import { listen } from './listen';
import type { Logger } from './log';

/** READY/START must arrive this soon after connect; after START there is no read timeout. */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
/** Concurrent producer connections across all listeners (pdns_recursor alone opens several). */
export const DEFAULT_MAX_CONNECTIONS = 64;
/**
 * Connections not yet through their handshake (TLS, then READY/START). They get a budget of
 * their own so that idle or slowloris sockets can never fill the slots producers need: when
 * it is full the oldest unfinished handshake is cut (a real producer finishes in
 * milliseconds; an attacker's sockets evict each other). Large on purpose: a flood larger
 * than this plus the listen backlog keeps the accept queue full and delays a producer's
 * connect (loadtest/attack.ts: 10,000 idle connections cost a replay 5.6x at 1,024). Each
 * costs a descriptor and about 9 KiB, and only while a flood lasts.
 */
export const DEFAULT_MAX_HANDSHAKING = 16_384;
/**
 * Unix socket file mode. DNS servers drop privileges after start (unbound, bind, knot, kresd
 * each run as their own user) and connect(2) needs write permission on the socket file, so
 * by default anyone who can reach the file may connect. Access control belongs to the
 * directory holding the socket (a shared emptyDir, /run/snowtap 0750 with a dnstap group);
 * operators who prefer a group on the socket itself set 0o660.
 */
export const DEFAULT_SOCKET_MODE = 0o666;
/** close() without an argument: how long in-flight data is still read from producers. */
export const DEFAULT_CLOSE_GRACE_MS = 2_000;
/** TCP keepalive so a vanished producer host does not hold a connection slot forever. */
export const TCP_KEEPALIVE_MS = 30_000;
/**
 * listen(2) backlog of the TCP listener (capped by net.core.somaxconn): under a connection
 * flood a full accept queue drops a DNS server's SYN and costs it a 1 s retransmit.
 */
export const LISTEN_BACKLOG = 4096;
/** How long a connect probe to an existing socket file may take before we call it alive. */
const STALE_PROBE_TIMEOUT_MS = 1_000;
const MAX_TIMEOUT_MS = 0x7fffffff;

export const FrameStreamServerErrorCode = {
  /** An option is missing, unknown or out of range (the message names it). */
  INVALID_OPTION: 'FSTRM_SERVER_INVALID_OPTION',
  /** The unix path exists and is not a socket: never removed. */
  NOT_A_SOCKET: 'FSTRM_SERVER_NOT_A_SOCKET',
  /** Another process listens on the unix path or the TCP port. */
  ADDRESS_IN_USE: 'FSTRM_SERVER_ADDRESS_IN_USE',
  /** Any other failure to listen (bad directory, permissions, path too long...). */
  LISTEN_FAILED: 'FSTRM_SERVER_LISTEN_FAILED',
  /** listen() twice, or after close(). */
  INVALID_STATE: 'FSTRM_SERVER_INVALID_STATE',
} as const;
export type FrameStreamServerErrorCode = CodeOf<typeof FrameStreamServerErrorCode>;

export class FrameStreamServerError extends CodedError<FrameStreamServerErrorCode> {
  override readonly name = 'FrameStreamServerError';
}

export interface FrameStreamServerOptions {
  /** Unix socket path to listen on. At least one of unixPath and tcp is required. */
  unixPath?: string;
  /** TCP address to listen on; port 0 picks a free port (see listen()'s result). */
  tcp?: { host: string; port: number };
  sink: FrameSink;
  log: Logger;
  /** Largest data frame payload; larger ones are skipped and counted. Default 1 MiB. */
  maxDataFrameSize?: number;
  /** Deadline for READY/START after connect. Default 10 s. */
  handshakeTimeoutMs?: number;
  /** Open connections across both listeners; extra ones are closed at once. Default 64. */
  maxConnections?: number;
  /** Connections still in their (TLS and) Frame Streams handshake; the oldest is cut beyond it. Default 64. */
  maxHandshaking?: number;
  /**
   * TLS on the TCP listener (never on the unix socket). With `ca`, clients must present a
   * certificate it signed; without, none is asked for (CoreDNS's dnstap client has none).
   */
  tls?: FrameStreamTlsOptions | null;
  /** TCP sources allowed to connect (CIDRs or addresses); others are closed unread. Default: all. */
  allow?: readonly string[] | null;
  /** Content type accepted in READY/START. Default dnstap. */
  contentType?: string;
  /** Mode of the unix socket file. Default 0o666 (see DEFAULT_SOCKET_MODE). */
  socketMode?: number;
}

/** The listener settings an operator tunes (CLI --dnstap-* options of the agent and the enricher). */
export type DnstapListenerTuning = Pick<
  FrameStreamServerOptions,
  'tls' | 'allow' | 'maxConnections' | 'maxHandshaking' | 'handshakeTimeoutMs' | 'socketMode'
>;

export interface FrameStreamTlsOptions {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer;
}

export type ResolvedServerOptions = Required<
  Omit<FrameStreamServerOptions, 'unixPath' | 'tcp' | 'tls' | 'allow'>
> &
  Pick<FrameStreamServerOptions, 'unixPath' | 'tcp'> & {
    tls: tls.SecureContextOptions | null;
    allow: net.BlockList | null;
  };

const KEYS = [
  'unixPath',
  'tcp',
  'sink',
  'log',
  'maxDataFrameSize',
  'handshakeTimeoutMs',
  'maxConnections',
  'maxHandshaking',
  'tls',
  'allow',
  'contentType',
  'socketMode',
];

function invalid(message: string): FrameStreamServerError {
  return new FrameStreamServerError(
    FrameStreamServerErrorCode.INVALID_OPTION,
    `FrameStreamServer: ${message}`,
  );
}

function int(field: string, value: number, min: number, max: number): number {
  return checkInt(field, value, min, max, invalid);
}

/** Defaults in one place; every field validated, unknown keys rejected by name. */
export function resolveServerOptions(o: FrameStreamServerOptions): ResolvedServerOptions {
  for (const key of Object.keys(o ?? {})) {
    if (!KEYS.includes(key)) throw invalid(`unknown option "${key}" (known: ${KEYS.join(', ')})`);
  }
  if (o.unixPath === undefined && o.tcp === undefined) throw invalid('give unixPath, tcp or both');
  if (o.unixPath !== undefined && (typeof o.unixPath !== 'string' || o.unixPath === '')) {
    throw invalid('unixPath must be a non-empty string');
  }
  if (o.tcp !== undefined) {
    if (typeof o.tcp?.host !== 'string') throw invalid('tcp.host must be a string');
    int('tcp.port', o.tcp.port, 0, 65535);
  }
  if (typeof o.sink?.onFrame !== 'function')
    throw invalid('sink must have an onFrame(buf, start, end, conn)');
  if (o.log === undefined || o.log === null) throw invalid('log (a Logger, common/log.ts) is required');
  return {
    unixPath: o.unixPath,
    tcp: o.tcp,
    sink: o.sink,
    log: o.log,
    maxDataFrameSize: int(
      'maxDataFrameSize',
      o.maxDataFrameSize ?? DEFAULT_MAX_DATA_FRAME_SIZE,
      1,
      MAX_CONFIGURABLE_DATA_FRAME_SIZE,
    ),
    handshakeTimeoutMs: int(
      'handshakeTimeoutMs',
      o.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
      1,
      MAX_TIMEOUT_MS,
    ),
    maxConnections: int('maxConnections', o.maxConnections ?? DEFAULT_MAX_CONNECTIONS, 1, 1_000_000),
    maxHandshaking: int('maxHandshaking', o.maxHandshaking ?? DEFAULT_MAX_HANDSHAKING, 1, 1_000_000),
    tls: resolveTls(o.tls),
    allow: resolveAllow(o.allow),
    contentType: o.contentType ?? DNSTAP_CONTENT_TYPE,
    socketMode: int('socketMode', o.socketMode ?? DEFAULT_SOCKET_MODE, 0, 0o777),
  };
}

function resolveTls(t: FrameStreamTlsOptions | null | undefined): ResolvedServerOptions['tls'] {
  if (t === undefined || t === null) return null;
  if (!Buffer.isBuffer(t.cert) || !Buffer.isBuffer(t.key))
    throw invalid('tls needs cert and key (PEM buffers)');
  const ctx: tls.SecureContextOptions = { cert: t.cert, key: t.key, minVersion: 'TLSv1.2' };
  if (t.ca !== undefined) ctx.ca = t.ca;
  try {
    (require('node:tls') as typeof tls).createSecureContext(ctx); // only with TLS configured
  } catch (err) {
    throw invalid(`tls: ${(err as Error).message}`);
  }
  return ctx;
}

function resolveAllow(a: readonly string[] | null | undefined): net.BlockList | null {
  if (a === undefined || a === null) return null;
  if (!Array.isArray(a) || a.length === 0) throw invalid('allow must be a non-empty list of CIDRs');
  try {
    return parseAllowList(a);
  } catch (err) {
    throw invalid(`allow: ${(err as Error).message}`);
  }
}

/** True when something accepts connections on the unix socket at `path`. */
function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const probe = net.connect(path);
    const done = (alive: boolean, err?: Error) => {
      clearTimeout(timer);
      probe.destroy();
      if (err) reject(err);
      else resolve(alive);
    };
    const timer = setTimeout(() => done(true), STALE_PROBE_TIMEOUT_MS);
    probe.once('connect', () => done(true));
    probe.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED' || err.code === 'ENOENT') done(false);
      // EAGAIN: a full backlog, i.e. a live but busy listener.
      else if (err.code === 'EAGAIN') done(true);
      else done(false, err);
    });
  });
}

/**
 * Makes `path` free for listen(): removes a stale socket file (left by a crash or kill -9,
 * nobody answers on it). Refuses to touch anything that is not a socket, or a live one.
 */
export async function prepareUnixPath(path: string, log: Logger): Promise<void> {
  let st: Awaited<ReturnType<typeof fs.lstat>>;
  try {
    st = await fs.lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw listenFailed(`cannot inspect ${path}`, err);
  }
  if (!st.isSocket()) {
    throw new FrameStreamServerError(
      FrameStreamServerErrorCode.NOT_A_SOCKET,
      `${path} exists and is not a socket; refusing to replace it`,
    );
  }
  let alive: boolean;
  try {
    alive = await socketAnswers(path);
  } catch (err) {
    throw listenFailed(`cannot probe existing socket ${path}`, err);
  }
  if (alive) {
    throw new FrameStreamServerError(
      FrameStreamServerErrorCode.ADDRESS_IN_USE,
      `${path}: another process is listening on this socket`,
    );
  }
  await fs.unlink(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw listenFailed(`cannot remove stale socket ${path}`, err);
  });
  log.info({ path }, 'removed stale dnstap socket file');
}

export function listenFailed(message: string, cause: unknown): FrameStreamServerError {
  const code = (cause as NodeJS.ErrnoException)?.code;
  return new FrameStreamServerError(
    code === 'EADDRINUSE'
      ? FrameStreamServerErrorCode.ADDRESS_IN_USE
      : FrameStreamServerErrorCode.LISTEN_FAILED,
    `${message}: ${(cause as Error)?.message ?? String(cause)}`,
    { cause },
  );
}

/** Listens and resolves once bound; rejects with a typed error naming the address. */
export async function listenOn(
  server: net.Server,
  what: string,
  args: [string] | [number, string],
): Promise<void> {
  const options =
    args.length === 1 ? { path: args[0] } : { port: args[0], host: args[1], backlog: LISTEN_BACKLOG };
  try {
    await listen(server, options);
  } catch (err) {
    throw listenFailed(`cannot listen on ${what}`, err);
  }
}
