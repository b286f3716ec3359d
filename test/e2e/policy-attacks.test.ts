// A hostile or broken policy server (issue 10, "Policy server attacks") against the enricher's
// policy poller over a real local HTTP server: a 1 byte/s drip, a gzip bomb (2 GiB of zeros in
// 2 MB), gigantic JSON (chunked without end, and a declared 10 GB length), a wrong content
// type, redirects to another port, to file: and to itself. Each time the last good policy is
// kept, the failure is logged with a clear reason and counted by reason (the counters behind
// snowtap_enricher_policy_fetch_failures_total), and memory stays bounded: RSS and heap are
// sampled every 10 ms during each attack and the peak growth is reported and asserted.

import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { type TestContext, test } from 'node:test';
import zlib from 'node:zlib';
import { PolicyPoller } from '../../enricher/policy/poller';
import { captureLog, findLog } from '../support/enricher-helpers';

const MiB = 1024 * 1024;
/** The cap the attacks run against (--policy-max-bytes); the default is 256 MiB. */
const CAP = 16 * MiB;
/** Peak RSS growth allowed during an attack: the cap, a worker thread, slack for a busy GC. */
const RSS_BOUND = 160 * MiB;

const good = (version: string) =>
  JSON.stringify({ version, domains: [{ suffix: 'example.com', category: 'c', action: 'log' }] });

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

async function server(
  t: TestContext,
  handler: () => Handler,
): Promise<{ url: string; requests: () => number }> {
  let requests = 0;
  const srv = http.createServer((req, res) => {
    requests++;
    handler()(req, res);
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    srv.closeAllConnections();
    srv.close();
  });
  return {
    url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}/policy.json`,
    requests: () => requests,
  };
}

interface Attacked {
  poller: PolicyPoller;
  lines: ReturnType<typeof captureLog>['lines'];
  url: string;
  requests: () => number;
  /** Runs one poll under `attack`; returns its outcome, time and peak memory growth. */
  attack(h: Handler): Promise<{ outcome: string; ms: number; rssGrowth: number; heapGrowth: number }>;
}

/** A poller that loaded policy good-1, then faces whatever `attack` serves. */
async function attacked(t: TestContext, timeoutMs = 5000): Promise<Attacked> {
  let current: Handler = (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', etag: '"g1"' });
    res.end(good('good-1'));
  };
  const { url, requests } = await server(t, () => current);
  const { log, lines } = captureLog();
  const poller = new PolicyPoller({ url, log, timeoutMs, maxBodyBytes: CAP, intervalMs: 3_600_000 });
  t.after(() => poller.stop());
  await poller.start();
  assert.equal(poller.current?.version, 'good-1');
  return {
    poller,
    lines,
    url,
    requests,
    async attack(h) {
      current = h;
      global.gc?.();
      const base = process.memoryUsage();
      let rss = base.rss;
      let heap = base.heapUsed;
      const sampler = setInterval(() => {
        const m = process.memoryUsage();
        rss = Math.max(rss, m.rss);
        heap = Math.max(heap, m.heapUsed);
      }, 10);
      const t0 = performance.now();
      const outcome = await poller.poll();
      const ms = Math.round(performance.now() - t0);
      clearInterval(sampler);
      const m = process.memoryUsage();
      rss = Math.max(rss, m.rss);
      heap = Math.max(heap, m.heapUsed);
      return { outcome, ms, rssGrowth: rss - base.rss, heapGrowth: heap - base.heapUsed };
    },
  };
}

function expectKept(
  t: TestContext,
  a: Attacked,
  r: Awaited<ReturnType<Attacked['attack']>>,
  reason: string,
  message: RegExp,
): void {
  t.diagnostic(
    `${t.name}: ${reason} after ${r.ms} ms, peak RSS +${(r.rssGrowth / MiB).toFixed(1)} MiB, heap +${(r.heapGrowth / MiB).toFixed(1)} MiB`,
  );
  assert.equal(r.outcome, 'failed');
  assert.equal(a.poller.current?.version, 'good-1', 'the last good policy is kept');
  assert.equal(a.poller.stats.failures.get(reason as never), 1, `counted as ${reason}`);
  const logged = findLog(a.lines, 'policy load failed; keeping the last good policy');
  assert.equal(logged.length, 1);
  assert.equal(logged[0]!.reason, reason);
  assert.match(String(logged[0]!.err), message);
  assert.equal(logged[0]!.keeping, 'good-1');
  assert.ok(r.rssGrowth < RSS_BOUND, `RSS grew ${(r.rssGrowth / MiB).toFixed(0)} MiB during the attack`);
}

test('slow drip (1 byte/s): cut at the fetch deadline', async (t) => {
  const a = await attacked(t, 2000);
  const r = await a.attack((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    const body = good('drip-1');
    let i = 0;
    const timer = setInterval(() => {
      if (res.destroyed || i >= body.length) return clearInterval(timer);
      res.write(body[i++]!);
    }, 1000);
    res.on('close', () => clearInterval(timer));
  });
  expectKept(t, a, r, 'timeout', /no complete answer within 2000 ms/);
  assert.ok(r.ms >= 1900 && r.ms < 4000, `cut after ${r.ms} ms`);
});

test('gzip bomb (2 GiB of zeros in ~2 MB): stops at the cap, never expands in full', async (t) => {
  const member = zlib.gzipSync(Buffer.alloc(64 * MiB), { level: 9 });
  const bomb = Buffer.concat(Array.from({ length: 32 }, () => member)); // gunzip reads every member
  assert.ok(bomb.length < CAP, `the bomb itself (${bomb.length} bytes) fits under the body cap`);
  const a = await attacked(t);
  const r = await a.attack((_req, res) => {
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-encoding': 'gzip',
      'content-length': bomb.length,
    });
    res.end(bomb);
  });
  expectKept(t, a, r, 'too_large', new RegExp(`decompresses to more than ${CAP} bytes`));
});

test('gigantic JSON, chunked without end: cut at the cap as it arrives', async (t) => {
  const a = await attacked(t, 20_000);
  const entry = Buffer.from('{"suffix":"a.example","category":"c","action":"log"},'.repeat(1000));
  let sent = 0;
  const r = await a.attack((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }); // chunked: no length to refuse up front
    res.write('{"version":"huge","domains":[');
    const pump = () => {
      while (!res.destroyed && sent < 1024 * MiB) {
        sent += entry.length;
        if (!res.write(entry)) return void res.once('drain', pump);
      }
      res.end();
    };
    res.on('error', () => {});
    pump();
  });
  expectKept(t, a, r, 'too_large', new RegExp(`body exceeds ${CAP} bytes \\(--policy-max-bytes\\)`));
  assert.ok(sent < 1024 * MiB, `the server was cut off after ${(sent / MiB).toFixed(0)} MiB`);
});

test('gigantic JSON, declared 10 GB: refused from its headers', async (t) => {
  const a = await attacked(t);
  const r = await a.attack((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(10 * 1024 ** 3) });
    res.write('{"version":');
  });
  expectKept(t, a, r, 'too_large', /body of 10737418240 bytes exceeds/);
  assert.ok(r.ms < 2000);
});

test('wrong content type (an HTML page, even holding valid JSON): refused before parsing', async (t) => {
  const a = await attacked(t);
  const r = await a.attack((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(good('html-1'));
  });
  expectKept(t, a, r, 'content_type', /content type "text\/html" is not a policy document/);
});

test('redirect to another port: not followed, that server never asked', async (t) => {
  const other = await server(t, () => (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(good('elsewhere-1'));
  });
  const a = await attacked(t);
  const r = await a.attack((_req, res) => {
    res.writeHead(302, { location: other.url });
    res.end('moved');
  });
  expectKept(
    t,
    a,
    r,
    'redirect',
    /HTTP 302 redirect to "http:\/\/127\.0\.0\.1:\d+\/policy\.json" not followed/,
  );
  assert.equal(other.requests(), 0);
});

test('redirect to file: not followed', async (t) => {
  const a = await attacked(t);
  const r = await a.attack((_req, res) => {
    res.writeHead(301, { location: 'file:///etc/passwd' });
    res.end();
  });
  expectKept(t, a, r, 'redirect', /redirect to "file:\/\/\/etc\/passwd" not followed/);
});

test('redirect loop (to itself): one request, not followed', async (t) => {
  const a = await attacked(t);
  const before = a.requests();
  const r = await a.attack((_req, res) => {
    res.writeHead(307, { location: a.url });
    res.end();
  });
  expectKept(t, a, r, 'redirect', /HTTP 307 redirect/);
  assert.equal(a.requests() - before, 1);
});

test('after an attack, a good document is loaded again', async (t) => {
  const a = await attacked(t);
  await a.attack((_req, res) => {
    res.writeHead(200, { 'content-type': 'image/png' });
    res.end('x');
  });
  const r = await a.attack((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', etag: '"g2"' });
    res.end(zlib.gzipSync(good('good-2')));
  });
  assert.equal(r.outcome, 'updated');
  assert.equal(a.poller.current?.version, 'good-2');
  assert.equal(a.poller.stats.failures.get('content_type'), 1);
});
