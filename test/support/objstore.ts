// Object-storage servers for the az:// and s3:// output tests, and the proxy in front of them.
//
// - Azurite (Microsoft's emulator, npm devDependency) runs as a child process, in memory, on a
//   free port, telemetry off. It enforces If-None-Match: * on Put Block List itself (409
//   BlobAlreadyExists), so its proxy only records.
// - s3rver (npm devDependency) runs in-process. It ignores If-None-Match on PutObject, so the
//   proxy ENFORCES it as S3 does (412 PreconditionFailed when the key exists; requests for one
//   key are serialised in the proxy so the check and the write are atomic), and refuses
//   multipart uploads outright (snowtap never uses them; S3's >= 5 MiB part rule is then moot).
// - The recording proxy counts, per final chunk name, the successful creates (Put Block List,
//   Put Blob, PutObject, CompleteMultipartUpload) and the attempts, whether each create was
//   conditional, and every write to a name that is neither a chunk nor a heartbeat record.
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TestContext } from 'node:test';

export const AZURITE_ACCOUNT = 'devstoreaccount1';
// Azurite's well-known development key (public, documented by Microsoft).
export const AZURITE_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export function azuriteConnectionString(port: number): string {
  return (
    `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};` +
    `BlobEndpoint=http://127.0.0.1:${port}/${AZURITE_ACCOUNT};`
  );
}

export interface Server {
  port: number;
  close(): Promise<void>;
}

/** Azurite blob service in memory on a free port. */
export async function startAzurite(): Promise<Server> {
  const main = path.join(path.dirname(require.resolve('azurite/package.json')), 'dist/src/blob/main.js');
  const child: ChildProcess = spawn(
    process.execPath,
    [
      main,
      '--inMemoryPersistence',
      '--blobHost',
      '127.0.0.1',
      '--blobPort',
      '0',
      '--disableTelemetry',
      '--silent',
      '--skipApiVersionCheck',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`azurite did not start: ${out}`)), 20_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /successfully listens on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.stderr!.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.on('exit', (code) => reject(new Error(`azurite exited ${code}: ${out}`)));
  });
  return {
    port,
    close: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  };
}

/** s3rver in-process on a free port, files in a temp directory. */
export async function startS3rver(buckets: string[]): Promise<Server> {
  const S3rver = require('s3rver') as new (
    o: object,
  ) => {
    run(): Promise<AddressInfo>;
    close(): Promise<void>;
  };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'objstore-s3rver-'));
  const s = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory: dir,
    configureBuckets: buckets.map((name) => ({ name })),
  });
  const addr = await s.run();
  return {
    port: addr.port,
    close: async () => {
      await s.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const CHUNK_NAME = /(^|\/)\d{4}\/\d{2}\/\d{2}\/\d{2}\/snowtap-[^/]+\.csv(\.gz|\.zst)?$/;
const RECORD_NAME = /(^|\/)_partial\/[^/]+\/owner\.json$/;

export interface CreateCount {
  /** Creates that succeeded (2xx). */
  ok: number;
  /** Create requests, successful or not. */
  attempts: number;
  /** Create requests without If-None-Match: *. */
  unconditional: number;
}

export interface ProxyLog {
  creates: Map<string, CreateCount>;
  /** Writes (PUT/POST/DELETE) to names that are neither chunks nor heartbeat records. */
  otherWrites: string[];
  /** Multipart requests refused (S3). */
  refused: string[];
  /** Write requests by kind, for the transaction arithmetic. */
  writes: Map<string, number>;
}

export interface RecordingProxy extends Server {
  log: ProxyLog;
  /** Chunk names with exactly one successful create, sorted. */
  createdChunks(): string[];
}

type Kind = 'az' | 's3';

/** Splits /account/container/name (az) or /bucket/key (s3, path style) into the object name. */
function objectOf(kind: Kind, url: URL): string {
  const parts = decodeURIComponent(url.pathname).split('/').slice(1);
  return parts.slice(kind === 'az' ? 2 : 1).join('/');
}

/** What a write request does: 'create' (a whole-object create), another write kind, or null (a read). */
function classify(kind: Kind, req: http.IncomingMessage, url: URL): string | null {
  const m = req.method ?? 'GET';
  if (m === 'GET' || m === 'HEAD') return null;
  const q = url.searchParams;
  if (kind === 'az') {
    const comp = q.get('comp');
    if (m === 'PUT' && comp === 'blocklist') return 'create';
    if (m === 'PUT' && comp === 'block') return 'stage';
    if (m === 'PUT' && comp === null && q.get('restype') === null) return 'create';
    if (m === 'DELETE') return 'delete';
    return `${m.toLowerCase()}-${comp ?? q.get('restype') ?? 'other'}`;
  }
  if (m === 'POST' && q.has('uploadId')) return 'create';
  if (m === 'POST' && q.has('uploads')) return 'multipart';
  if (m === 'PUT' && (q.has('uploadId') || q.has('partNumber'))) return 'multipart';
  if (m === 'PUT' && objectOf(kind, url) !== '') return 'create';
  if (m === 'DELETE') return 'delete';
  return m.toLowerCase();
}

function forward(
  upstream: number,
  req: http.IncomingMessage,
  body: Buffer,
  res: http.ServerResponse,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const up = http.request(
      { host: '127.0.0.1', port: upstream, method: req.method, path: req.url, headers: req.headers },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
        r.on('end', () => resolve(r.statusCode ?? 502));
      },
    );
    up.on('error', reject);
    up.end(body);
  });
}

function head(upstream: number, req: http.IncomingMessage): Promise<number> {
  return new Promise((resolve, reject) => {
    const headers = { ...req.headers };
    delete headers['content-length'];
    delete headers['content-md5'];
    delete headers['if-none-match'];
    const r = http.request(
      { host: '127.0.0.1', port: upstream, method: 'HEAD', path: req.url, headers },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    r.on('error', reject);
    r.end();
  });
}

/**
 * A recording proxy on a free port in front of `upstream`. `enforce` (S3): If-None-Match: *
 * on PutObject is enforced here and multipart uploads are refused.
 */
export async function startProxy(kind: Kind, upstream: number, enforce: boolean): Promise<RecordingProxy> {
  const log: ProxyLog = { creates: new Map(), otherWrites: [], refused: [], writes: new Map() };
  const keyLocks = new Map<string, Promise<void>>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const url = new URL(req.url ?? '/', 'http://proxy');
      const what = classify(kind, req, url);
      const name = objectOf(kind, url);
      if (what !== null) log.writes.set(what, (log.writes.get(what) ?? 0) + 1);
      const isChunk = CHUNK_NAME.test(name);
      if (what !== null && !isChunk && !RECORD_NAME.test(name) && name !== '')
        log.otherWrites.push(`${what} ${name}`);
      if (what === 'multipart' && enforce) {
        log.refused.push(name);
        res.writeHead(501, { 'content-type': 'text/plain' });
        res.end('multipart uploads refused by the test proxy');
        return;
      }
      const run = async () => {
        const conditional = req.headers['if-none-match'] === '*';
        if (what === 'create' && enforce && conditional) {
          const st = await head(upstream, req);
          if (st === 200) {
            res.writeHead(412, { 'content-type': 'application/xml' });
            res.end(
              '<?xml version="1.0" encoding="UTF-8"?><Error><Code>PreconditionFailed</Code>' +
                '<Message>At least one of the pre-conditions you specified did not hold</Message>' +
                '<Condition>If-None-Match</Condition></Error>',
            );
            return 412;
          }
        }
        return forward(upstream, req, body, res);
      };
      const countCreate = (status: number) => {
        if (what !== 'create' || !isChunk) return;
        const c = log.creates.get(name) ?? { ok: 0, attempts: 0, unconditional: 0 };
        c.attempts++;
        if (req.headers['if-none-match'] !== '*') c.unconditional++;
        if (status >= 200 && status < 300) c.ok++;
        log.creates.set(name, c);
      };
      // One request per key at a time: the enforced check-then-write is atomic.
      const prev = keyLocks.get(name) ?? Promise.resolve();
      const mine = prev.then(async () => {
        try {
          countCreate(await run());
        } catch {
          if (!res.headersSent) res.writeHead(502);
          res.end();
        }
      });
      keyLocks.set(name, mine);
      void mine.finally(() => {
        if (keyLocks.get(name) === mine) keyLocks.delete(name);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    log,
    createdChunks: () =>
      [...log.creates.entries()]
        .filter(([, c]) => c.ok === 1)
        .map(([n]) => n)
        .sort(),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Sets env vars for the test's duration (the writer reads the standard environment). */
export function withEnv(t: TestContext, vars: Record<string, string>): void {
  const old: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(vars)) {
    old[k] = process.env[k];
    process.env[k] = v;
  }
  t.after(() => {
    for (const [k, v] of Object.entries(old)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
}

/**
 * Runs output-crash-child.js against `outputUrl` until it reported five flushes ("durable N"),
 * lets it write unflushed rows a little longer, kills it with SIGKILL; returns the last N:
 * every record below it was acknowledged as durable.
 */
export async function crashChildAfterFlushes(
  outputDir: string,
  enricherId: string,
  compression: string,
  outputUrl: string,
  maxRows: number,
  env: Record<string, string>,
): Promise<number> {
  const child = spawn(
    process.execPath,
    [
      path.resolve(__dirname, 'output-crash-child.js'),
      outputDir,
      enricherId,
      compression,
      outputUrl,
      String(maxRows),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } },
  );
  let durable = 0;
  let lines = 0;
  await new Promise<void>((resolve, reject) => {
    let text = '';
    child.stdout!.on('data', (b: Buffer) => {
      text += b.toString();
      for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n')) {
        durable = Number(text.slice(0, nl).split(' ')[1]);
        text = text.slice(nl + 1);
        if (++lines === 5) setTimeout(resolve, 300); // unflushed rows keep being written
      }
    });
    child.on('exit', (code) => reject(new Error(`crash child exited early with ${code}`)));
  });
  child.removeAllListeners('exit');
  const exited = new Promise((r) => child.on('exit', r));
  child.kill('SIGKILL');
  await exited;
  return durable;
}

/** s3rver in a child process (benchmarks: it must not share the writer's event loop). */
export async function startS3rverProcess(buckets: string[]): Promise<Server> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'objstore-s3rver-'));
  const script =
    `const S3rver = require(${JSON.stringify(require.resolve('s3rver'))});` +
    `new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: ${JSON.stringify(dir)},` +
    ` configureBuckets: ${JSON.stringify(buckets.map((name) => ({ name })))} })` +
    `.run().then((a) => console.log('port ' + a.port));`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /port (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', (code) => reject(new Error(`s3rver exited ${code}: ${out}`)));
  });
  return {
    port,
    close: () =>
      new Promise((resolve) => {
        child.removeAllListeners('exit');
        child.once('exit', () => {
          fs.rmSync(dir, { recursive: true, force: true });
          resolve();
        });
        child.kill('SIGKILL');
      }),
  };
}
