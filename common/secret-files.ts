// Files that hold secrets - the link token, TLS certificates and keys, the pseudonym key - re-read
// while the process runs, so that a rotated Kubernetes Secret is picked up without a restart
// (issue 10 "Secrets"; issue 9 for the pseudonym key).
//
// Why polling: the kubelet updates a mounted Secret by writing a new timestamped directory
// (`..2026_12_06_15_05_00.123`), pointing a temporary symlink `..data_tmp` at it and renaming that
// over `..data`; the file a process opens, `<mount>/tls.crt`, is a symlink to `..data/tls.crt` and
// never changes itself. A watch on the file (inotify on its inode) sees nothing; re-reading the
// path follows the new symlinks. The files are small, so every `intervalMs` (default 10 s) each
// watched group is read again and compared with what was last seen.
//
// A group is read and applied together (certificate, key and CA change in one swap); when its
// bytes changed, `load` validates them (a certificate that is expired, not yet valid, unreadable,
// or whose key does not match is refused with a message that says so) and `apply` puts them in
// use for new connections - existing ones keep what they were opened with. A refused or
// unreadable update keeps the current secret and is logged once per distinct content, at error.

import type * as Crypto from 'node:crypto';
import type { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type * as Tls from 'node:tls';
import { CodedError } from '../proto/kit/index';
import { MAX_AUTH_TOKEN_LENGTH } from '../proto/link/index';
import type { Logger } from './log';

/** How often secret files are re-read by default. */
export const SECRET_RELOAD_INTERVAL_MS = 10_000;
export const SECRET_RELOAD_RANGE_MS = { min: 100, max: 3_600_000 } as const;

export class SecretFileError extends CodedError<'SNOWTAP_SECRET_FILE'> {
  override readonly name = 'SecretFileError';
  constructor(message: string) {
    super('SNOWTAP_SECRET_FILE', message);
  }
}

/** The bytes without one trailing newline (`echo`, kubectl): the secret is what precedes it. */
export function withoutTrailingNewline(bytes: Buffer): Buffer {
  let end = bytes.length;
  if (end > 0 && bytes[end - 1] === 0x0a) end--;
  if (end > 0 && bytes[end - 1] === 0x0d) end--;
  return bytes.subarray(0, end);
}

/** The shared link token from its file's bytes; SecretFileError naming the file otherwise. */
export function tokenFromBytes(bytes: Buffer, path: string): Buffer {
  const token = withoutTrailingNewline(bytes);
  if (token.length === 0) throw new SecretFileError(`${path}: the token file is empty`);
  if (token.length > MAX_AUTH_TOKEN_LENGTH)
    throw new SecretFileError(`${path}: the token is longer than ${MAX_AUTH_TOKEN_LENGTH} bytes`);
  return Buffer.from(token);
}

/** The file's bytes now, or an empty buffer (then the first good read counts as a change). */
export function readOrEmpty(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch {
    return Buffer.alloc(0);
  }
}

export interface TlsMaterial {
  cert?: Buffer;
  key?: Buffer;
  ca?: Buffer;
}

function validity(pem: Buffer, what: string, now: number): void {
  let cert: X509Certificate;
  try {
    cert = new (require('node:crypto') as typeof Crypto).X509Certificate(pem);
  } catch (err) {
    throw new SecretFileError(`${what}: not a PEM certificate (${(err as Error).message})`);
  }
  const from = Date.parse(cert.validFrom);
  const to = Date.parse(cert.validTo);
  if (to < now)
    throw new SecretFileError(
      `${what}: the certificate (${cert.subject.replace(/\n/g, ', ')}) expired on ${new Date(to).toISOString()}`,
    );
  if (from > now)
    throw new SecretFileError(
      `${what}: the certificate (${cert.subject.replace(/\n/g, ', ')}) is not valid before ${new Date(from).toISOString()}`,
    );
}

/**
 * Checks TLS material before it is used: the certificate (the first of the chain) parses and is
 * valid now, the key matches it, the CA bundle parses. `names` say which files (for messages).
 * Throws SecretFileError with a message naming the file and the problem.
 */
export function checkTlsMaterial(
  m: TlsMaterial,
  names: { cert?: string; key?: string; ca?: string },
  now = Date.now(),
): void {
  if (m.cert !== undefined) validity(m.cert, names.cert ?? 'certificate', now);
  if (m.ca !== undefined) {
    try {
      new (require('node:crypto') as typeof Crypto).X509Certificate(m.ca);
    } catch (err) {
      throw new SecretFileError(`${names.ca ?? 'CA'}: not a PEM certificate (${(err as Error).message})`);
    }
  }
  try {
    (require('node:tls') as typeof Tls).createSecureContext({ cert: m.cert, key: m.key, ca: m.ca });
  } catch (err) {
    const msg = (err as Error).message;
    const which = [names.cert, names.key].filter(Boolean).join(' / ');
    if (/mismatch/i.test(msg))
      throw new SecretFileError(`${which}: the key does not belong to the certificate (${msg})`);
    throw new SecretFileError(`${[which, names.ca].filter(Boolean).join(' / ')}: ${msg}`);
  }
}

export interface SecretWatchOptions<T> {
  /** Metric label: link_token, link_tls, dnstap_tls, pseudonym_key (a fixed set). */
  id: string;
  /** What the files hold, for logs: "link TLS certificate", "link auth token". */
  what: string;
  /** Read together; an absent file of the group is undefined. */
  paths: readonly string[];
  /** The bytes in use (read at start), in `paths` order; re-read at the first tick when absent. */
  initial?: readonly Buffer[];
  /** Validates new bytes; throws (with a message naming the file) to refuse them. */
  load(contents: readonly Buffer[]): T;
  /** Puts the loaded value in use for new connections. */
  apply(value: T): void;
  log: Logger;
  intervalMs?: number;
}

/** Reloads and refusals per watch id (the metrics' samples). */
export function secretCounts(watches: readonly SecretWatch<unknown>[]): {
  reloads: Record<string, number>;
  failures: Record<string, number>;
} {
  const reloads: Record<string, number> = {};
  const failures: Record<string, number> = {};
  for (const w of watches) {
    reloads[w.id] = (reloads[w.id] ?? 0) + w.reloads;
    failures[w.id] = (failures[w.id] ?? 0) + w.failures;
  }
  return { reloads, failures };
}

/** One group of secret files re-read on a timer (see the header). */
export class SecretWatch<T> {
  /** Updates applied / refused (or unreadable), for metrics and tests. */
  reloads = 0;
  failures = 0;
  private seen: readonly Buffer[] | null;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly o: SecretWatchOptions<T>) {
    this.seen = o.initial ?? null;
  }

  get id(): string {
    return this.o.id;
  }

  start(): this {
    if (this.timer === null) {
      this.timer = setInterval(() => this.check(), this.o.intervalMs ?? SECRET_RELOAD_INTERVAL_MS);
      this.timer.unref();
    }
    return this;
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** One re-read: applies changed bytes that load; true when something new was applied. */
  check(): boolean {
    const o = this.o;
    let contents: Buffer[];
    try {
      contents = o.paths.map((p) => readFileSync(p));
    } catch (err) {
      // Mid-swap or a deleted mount: keep the current secret; say so once per error kind.
      const msg = (err as Error).message;
      if (this.lastError !== msg) {
        this.lastError = msg;
        this.failures++;
        o.log.warn({ secret: o.what, err: msg }, `${o.what}: cannot re-read; keeping the current one`);
      }
      return false;
    }
    const seen = this.seen;
    if (seen !== null && seen.length === contents.length && seen.every((b, i) => b.equals(contents[i]!)))
      return false;
    this.seen = contents;
    let value: T;
    try {
      value = o.load(contents);
    } catch (err) {
      this.failures++;
      this.lastError = (err as Error).message;
      o.log.error(
        { secret: o.what, paths: o.paths, err: (err as Error).message },
        `${o.what} refused: ${(err as Error).message}; keeping the current one`,
      );
      return false;
    }
    o.apply(value);
    this.reloads++;
    this.lastError = null;
    o.log.info({ secret: o.what, paths: o.paths }, `${o.what} changed`);
    return true;
  }

  private lastError: string | null = null;
}
