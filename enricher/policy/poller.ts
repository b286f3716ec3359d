// Keeps the policy in force fresh (README "Output: CSV chunks", policy document): polls --policy-url with If-None-Match every
// interval, or watches --policy-file's mtime/size at the interval. A new document replaces
// `current` in one assignment, so a record sees the old tables or the new ones, never a mix.
// Any failure (HTTP error, timeout, refused connection, oversized or invalid document) keeps
// the last good policy; it is logged and counted by reason, and the next attempt comes sooner,
// with exponential backoff capped at the interval.
//
// A policy server is trusted with the policy, not with the enricher's memory or time (issue
// 10, test/e2e/policy-attacks.test.ts): one deadline covers connect, headers and body (a
// 1 byte/s drip ends at timeoutMs); maxBodyBytes (--policy-max-bytes) bounds the body as it
// arrives and, after gunzip, the document (a gzip bomb stops at the cap in the worker, never
// expands in full); redirects are not followed (a policy URL that moved, or points at another
// host, port or file:, is a configuration to fix, not to chase); a body that says it is HTML,
// XML, an image... is refused before it is parsed.

import { stat } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { Logger } from '../../common/log';
import { MAX_DOCUMENT_BYTES } from './document';
import { PolicyError } from './errors';
import { loadPolicyBytes, loadPolicyFile, type Policy } from './policy';

/** Range of maxBodyBytes (--policy-max-bytes): JSON.parse takes at most MAX_DOCUMENT_BYTES. */
export const POLICY_MAX_BYTES_RANGE = { min: 1024, max: MAX_DOCUMENT_BYTES } as const;

export const POLICY_POLL_DEFAULTS = {
  intervalMs: 60_000,
  timeoutMs: 30_000,
  /**
   * Bound on a policy document: on the fetched body (compressed or not) as it arrives, and on
   * the document after gunzip (--policy-max-bytes). A 1M-domain document is ~60 MB of JSON.
   */
  maxBodyBytes: 256 * 1024 * 1024,
  /** First retry delay after a failure; doubles up to the interval. */
  minRetryMs: 1_000,
} as const;

export interface PolicyPollerOptions {
  /** Exactly one of url and file. */
  url?: string;
  file?: string;
  log: Logger;
  intervalMs?: number;
  timeoutMs?: number;
  maxBodyBytes?: number;
  minRetryMs?: number;
}

/** Label values of policy fetch failures: a metric label, so a small fixed set. */
export type PolicyFailureReason =
  | 'timeout'
  | 'connect'
  | 'http_status'
  | 'too_large'
  | 'bad_json'
  | 'invalid'
  | 'duplicate'
  | 'gzip'
  | 'io'
  | 'redirect'
  | 'content_type';

/**
 * Content types a policy body may declare: JSON, gzip, generic bytes or text (object stores
 * and plain web servers label a .json.gz in all of these ways). Absent is accepted too.
 * Anything else (text/html from a login page or an error page, XML, images) is refused.
 */
export const POLICY_CONTENT_TYPES = [
  'application/json',
  'application/gzip',
  'application/x-gzip',
  'application/octet-stream',
  'binary/octet-stream',
  'text/plain',
  'text/json',
] as const;

/** Null when `header` (a Content-Type value, or undefined) is acceptable, else the type refused. */
export function refusedContentType(header: string | undefined): string | null {
  if (header === undefined) return null;
  const type = header.split(';')[0]!.trim().toLowerCase();
  if (type === '' || type.endsWith('+json')) return null;
  return (POLICY_CONTENT_TYPES as readonly string[]).includes(type) ? null : type;
}

export class PolicyPollerStats {
  attempts = 0;
  /** A new policy swapped in. */
  updates = 0;
  /** 304, or the file did not change. */
  unchanged = 0;
  readonly failures = new Map<PolicyFailureReason, number>();
  /** Date.now() of the last attempt that ended with a usable answer (200 or 304); 0 = never. */
  lastSuccessMs = 0;
}

export type PollOutcome = 'updated' | 'unchanged' | 'failed';

class FetchFailure extends Error {
  constructor(
    readonly reason: PolicyFailureReason,
    message: string,
  ) {
    super(message);
  }
}

export class PolicyPoller {
  current: Policy | null = null;
  readonly stats = new PolicyPollerStats();
  private readonly o: Required<Omit<PolicyPollerOptions, 'url' | 'file'>>;
  private readonly source: string;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<PollOutcome> | null = null;
  private stopped = false;
  private failuresInRow = 0;
  private fileSignature = '';

  constructor(
    private readonly options: PolicyPollerOptions,
    private readonly onUpdate: (policy: Policy) => void = () => undefined,
  ) {
    if ((options.url === undefined) === (options.file === undefined)) {
      throw new Error('PolicyPoller: give exactly one of url and file');
    }
    this.source = options.url ?? options.file!;
    this.o = { ...POLICY_POLL_DEFAULTS, ...stripUndefined(options) } as typeof this.o;
  }

  /**
   * First load, then polls on a timer. A policy file that cannot be loaded at start throws
   * (a configuration error); a URL that fails is retried, `current` staying null meanwhile.
   */
  async start(): Promise<void> {
    if (this.options.file !== undefined) {
      const policy = await loadPolicyFile(this.options.file, { maxDocumentBytes: this.o.maxBodyBytes });
      this.fileSignature = await this.signature();
      this.swap(policy);
    } else {
      await this.poll();
    }
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  /** One attempt now (joins one already running). */
  poll(): Promise<PollOutcome> {
    this.running ??= this.attempt().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async attempt(): Promise<PollOutcome> {
    this.stats.attempts++;
    const started = Date.now();
    try {
      const policy = this.options.url !== undefined ? await this.fetchUrl() : await this.readFileIfChanged();
      this.stats.lastSuccessMs = Date.now();
      this.failuresInRow = 0;
      if (policy === null) {
        this.stats.unchanged++;
        return 'unchanged';
      }
      this.swap(policy, Date.now() - started);
      return 'updated';
    } catch (err) {
      const reason = classify(err);
      this.failuresInRow++;
      this.stats.failures.set(reason, (this.stats.failures.get(reason) ?? 0) + 1);
      this.o.log.warn(
        {
          source: this.source,
          reason,
          err: (err as Error).message,
          failuresInRow: this.failuresInRow,
          keeping: this.current?.version ?? null,
        },
        this.current === null
          ? 'policy load failed; no policy loaded yet'
          : 'policy load failed; keeping the last good policy',
      );
      return 'failed';
    }
  }

  private swap(policy: Policy, ms?: number): void {
    const previous = this.current?.version ?? null;
    this.current = policy;
    this.stats.updates++;
    this.o.log.info(
      {
        source: this.source,
        version: policy.version,
        previous,
        domains: policy.domainCount,
        networks: policy.networkCount,
        etag: policy.sourceEtag,
        ms,
      },
      'policy loaded',
    );
    this.onUpdate(policy);
  }

  private schedule(): void {
    if (this.stopped) return;
    let delay = this.o.intervalMs;
    if (this.failuresInRow > 0) {
      const backoff = this.o.minRetryMs * 2 ** Math.min(this.failuresInRow - 1, 30);
      // Jitter: many enrichers restarted together must not hit the policy server in step.
      delay = Math.min(delay, backoff) * (0.8 + 0.4 * Math.random());
    }
    this.timer = setTimeout(() => {
      this.timer = null;
      this.poll().then(() => this.schedule());
    }, delay);
    this.timer.unref();
  }

  /** The new policy, or null on 304. */
  private async fetchUrl(): Promise<Policy | null> {
    const url = this.options.url!;
    // gzip is welcome either way: the loader recognises it by its magic, not by headers.
    const headers: Record<string, string> = { accept: 'application/json', 'accept-encoding': 'gzip' };
    const etag = this.current?.sourceEtag;
    if (etag !== undefined) headers['if-none-match'] = etag;
    const res = await httpGet(new URL(url), headers, this.o.timeoutMs, this.o.maxBodyBytes);
    if (res.status === 304 && this.current !== null) return null;
    if (res.status >= 300 && res.status < 400 && res.location !== undefined) {
      throw new FetchFailure(
        'redirect',
        `HTTP ${res.status} redirect to ${JSON.stringify(res.location)} not followed: set --policy-url to the final URL`,
      );
    }
    if (res.status !== 200) throw new FetchFailure('http_status', `HTTP ${res.status} ${res.statusText}`);
    // The body is ours alone: the parser's worker thread may take it instead of a copy.
    return loadPolicyBytes(
      res.body,
      { source: url, sourceEtag: res.etag },
      { transferBytes: true, maxDocumentBytes: this.o.maxBodyBytes },
    );
  }

  private async readFileIfChanged(): Promise<Policy | null> {
    const sig = await this.signature();
    if (sig === this.fileSignature) return null;
    const policy = await loadPolicyFile(this.options.file!, { maxDocumentBytes: this.o.maxBodyBytes });
    this.fileSignature = sig;
    return policy;
  }

  /** What tells a changed file: inode (an atomic rename, a ConfigMap symlink swap), size, mtime. */
  private async signature(): Promise<string> {
    try {
      const st = await stat(this.options.file!);
      return `${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch (err) {
      throw new FetchFailure('io', `${this.options.file}: ${(err as Error).message}`);
    }
  }
}

interface HttpResult {
  status: number;
  statusText: string;
  etag: string | undefined;
  location: string | undefined;
  body: Buffer;
}

/**
 * One GET without connection reuse (nothing pooled outlives the poll or holds the process
 * open at exit). The deadline covers connect, headers and body; the body is bounded.
 */
function httpGet(
  url: URL,
  headers: Record<string, string>,
  timeoutMs: number,
  max: number,
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const get = url.protocol === 'https:' ? https.get : http.get;
    const req = get(url, { headers, agent: false }, (res) => {
      const status = res.statusCode ?? 0;
      const result = {
        status,
        statusText: res.statusMessage ?? '',
        etag: res.headers.etag,
        location: res.headers.location,
        body: Buffer.alloc(0),
      };
      if (status !== 200) {
        // Not read: an error page or a redirect body may be as large as it likes.
        done(null, result);
        req.destroy();
        return;
      }
      const declared = Number(res.headers['content-length'] ?? Number.NaN);
      if (declared > max)
        return fail(
          new FetchFailure('too_large', `body of ${declared} bytes exceeds ${max} (--policy-max-bytes)`),
        );
      const refused = refusedContentType(res.headers['content-type']);
      if (refused !== null) {
        return fail(
          new FetchFailure(
            'content_type',
            `content type ${JSON.stringify(refused)} is not a policy document (expected JSON or gzip)`,
          ),
        );
      }
      const chunks: Buffer[] = [];
      let total = 0;
      res.on('data', (chunk: Buffer) => {
        total += chunk.length;
        if (total > max)
          fail(new FetchFailure('too_large', `body exceeds ${max} bytes (--policy-max-bytes)`));
        else chunks.push(chunk);
      });
      res.on('end', () => {
        result.body = Buffer.concat(chunks, total);
        done(null, result);
      });
      res.on('error', (err) => done(err, null));
    });
    const timer = setTimeout(
      () => fail(new FetchFailure('timeout', `no complete answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    let settled = false;
    const done = (err: Error | null, r: HttpResult | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err !== null) reject(err);
      else resolve(r!);
    };
    const fail = (err: Error) => {
      done(err, null);
      req.destroy();
    };
    req.on('error', (err) => done(err, null));
  });
}

function classify(err: unknown): PolicyFailureReason {
  if (err instanceof FetchFailure) return err.reason;
  if (err instanceof PolicyError) {
    const reason = err.code.replace(/^POLICY_/, '').toLowerCase();
    return (
      (['too_large', 'bad_json', 'invalid', 'duplicate', 'gzip', 'io'] as const).find((r) => r === reason) ??
      'invalid'
    );
  }
  // Socket-level failures: refused, reset, unknown host, TLS.
  return 'connect';
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
