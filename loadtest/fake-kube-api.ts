// FAKE KUBERNETES API SERVER - a test stand-in, not Kubernetes.
//
// No Kubernetes API server can run here (no kube-apiserver/etcd, no cluster, no network
// beyond loopback), so discovery tests talk to this: a node:http(s) server on 127.0.0.1
// that speaks just the part of the API the agent uses - list and watch of
// discovery.k8s.io/v1 EndpointSlices in one namespace with a label selector - with the JSON
// shapes a real API server sends:
//   GET /apis/discovery.k8s.io/v1/namespaces/NS/endpointslices?labelSelector=K=V
//     -> EndpointSliceList {apiVersion, kind, metadata.resourceVersion, items (no kind)}
//   ...&watch=1|true&resourceVersion=RV&allowWatchBookmarks=true&timeoutSeconds=N
//     -> 200, newline-delimited {"type": ADDED|MODIFIED|DELETED|BOOKMARK|ERROR, "object"}
//   a compacted resourceVersion -> ERROR event with a 410 Status, then the stream ends
//     (what a real server does), or an HTTP 410 Status (expiredAs = 'http');
//   a wrong bearer token -> HTTP 401 Status.
// Tests drive it: apply()/remove() slices, bookmark(), compact(), endWatches(), failNext(),
// goDown()/comeUp(). What it does not do: pagination, field selectors, sendInitialEvents,
// resourceVersionMatch, protobuf, RBAC beyond the token.

import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import { join } from 'node:path';
import { boundPort, listen } from '../common/listen';

/**
 * Self-signed test certificate (CA:TRUE, SAN 127.0.0.1, ::1, localhost; 2020-2120) and its
 * key, for the TLS variant: in-cluster config always uses https and verifies ca.crt. A
 * test-only secret, worthless outside this file.
 */
export const FAKE_API_CA_PEM = `-----BEGIN CERTIFICATE-----
MIIBszCCAVqgAwIBAgIBATAKBggqhkjOPQQDAjAeMRwwGgYDVQQDDBNmYWtlLWt1
YmUtYXBpc2VydmVyMCAXDTIwMDEwMTAwMDAwMFoYDzIxMjAwMTAxMDAwMDAwWjAe
MRwwGgYDVQQDDBNmYWtlLWt1YmUtYXBpc2VydmVyMFkwEwYHKoZIzj0CAQYIKoZI
zj0DAQcDQgAEjP52a+rwHQ+IarLTuS0KIPJxQBQJ84wcIw+A9QkfrK2MdpXgTKOD
H/henAfq2GNqkkPR4OjYCg/TU6VddF4/IqOBhjCBgzAsBgNVHREEJTAjhwR/AAAB
hxAAAAAAAAAAAAAAAAAAAAABgglsb2NhbGhvc3QwDwYDVR0TAQH/BAUwAwEB/zAO
BgNVHQ8BAf8EBAMCAoQwEwYDVR0lBAwwCgYIKwYBBQUHAwEwHQYDVR0OBBYEFN2a
xUk+q5bP/5X59FxiumxFG53+MAoGCCqGSM49BAMCA0cAMEQCIBOw0hvubcIpLc4i
lEiqEhJyKGw2xxlw2DRIV0TX+xiVAiBlbhS3DE3kqtCip1yNQ9itYqlDGgyGp3Op
3U0zaO/ZRw==
-----END CERTIFICATE-----
`;
const FAKE_API_KEY_PEM = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgyJBn6Ck0kHBq/u2j
23p4NvExIUeTQO82VpJi+cS4sAqhRANCAASM/nZr6vAdD4hqstO5LQog8nFAFAnz
jBwjD4D1CR+srYx2leBMo4Mf+F6cB+rYY2qSQ9Hg6NgKD9NTpV10Xj8i
-----END PRIVATE KEY-----
`;

export interface FakeEndpoint {
  ip: string;
  ready?: boolean | null;
  serving?: boolean | null;
  terminating?: boolean | null;
  /** targetRef Pod name; also nodeName "node-<zone>". */
  pod?: string;
  zone?: string;
}

export interface FakeSliceSpec {
  name: string;
  service: string;
  namespace?: string;
  addressType?: 'IPv4' | 'IPv6' | 'FQDN';
  ports?: Array<{ name?: string; port: number | null; protocol?: string }>;
  /** null: the JSON `"endpoints": null` a Go nil slice becomes. */
  endpoints: FakeEndpoint[] | null;
}

// biome-ignore lint/suspicious/noExplicitAny: JSON objects as the wire has them
export type Json = any;

/** An EndpointSlice as the EndpointSlice controller writes it (resourceVersion set on apply). */
export function endpointSlice(s: FakeSliceSpec): Json {
  const ns = s.namespace ?? 'snowtap';
  return {
    metadata: {
      name: s.name,
      generateName: `${s.service}-`,
      namespace: ns,
      uid: randomUUID(),
      generation: 1,
      creationTimestamp: '2026-01-01T00:00:00Z',
      labels: {
        'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io',
        'kubernetes.io/service-name': s.service,
        'app.kubernetes.io/name': 'snowtap',
      },
      annotations: { 'endpoints.kubernetes.io/last-change-trigger-time': '2026-01-01T00:00:00Z' },
      ownerReferences: [
        {
          apiVersion: 'v1',
          kind: 'Service',
          name: s.service,
          uid: randomUUID(),
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    addressType: s.addressType ?? 'IPv4',
    endpoints:
      s.endpoints === null
        ? null
        : s.endpoints.map((e) => {
            const conditions: Json = {};
            if (e.ready !== undefined) conditions.ready = e.ready;
            if (e.serving !== undefined) conditions.serving = e.serving;
            if (e.terminating !== undefined) conditions.terminating = e.terminating;
            const ep: Json = { addresses: [e.ip], conditions };
            if (e.pod) {
              ep.targetRef = { kind: 'Pod', namespace: ns, name: e.pod, uid: randomUUID() };
              ep.nodeName = `node-${e.zone ?? 'a'}`;
            }
            if (e.zone) ep.zone = e.zone;
            return ep;
          }),
    ports: (s.ports ?? [{ name: 'link', port: 7400 }]).map((p) => ({
      name: p.name ?? '',
      port: p.port,
      protocol: p.protocol ?? 'TCP',
    })),
  };
}

/** Ready endpoint shorthand: ready + serving, not terminating. */
export function pod(ip: string, name: string, zone?: string): FakeEndpoint {
  return { ip, pod: name, zone, ready: true, serving: true, terminating: false };
}

interface StoredEvent {
  rv: number;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  object: Json;
}

export interface RecordedRequest {
  path: string;
  query: Record<string, string>;
  watch: boolean;
  status: number;
}

interface OpenWatch {
  res: http.ServerResponse;
  namespace: string;
  selector: Array<[string, string]>;
  bookmarks: boolean;
}

const SLICES_PATH = /^\/apis\/discovery\.k8s\.io\/v1\/namespaces\/([^/]+)\/endpointslices$/;
const KIND_SLICE = { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice' };

export function status(code: number, reason: string, message: string): Json {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

export class FakeKubeApi {
  /** Bearer token required on every request; tests may change it (rotation). */
  token: string;
  /** How a compacted resourceVersion on a watch is answered. */
  expiredAs: 'event' | 'http' = 'event';
  readonly requests: RecordedRequest[] = [];
  private readonly server: http.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly watches = new Set<OpenWatch>();
  private readonly slices = new Map<string, Json>();
  private readonly log: StoredEvent[] = [];
  private rv = 1000;
  private compactedRv = 0;
  private failures: Array<{ code: number; reason: string }> = [];
  private hangs = 0;
  private portNumber = 0;

  private constructor(
    token: string,
    readonly tls: boolean,
  ) {
    this.token = token;
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => this.handle(req, res);
    this.server = tls
      ? https.createServer({ key: FAKE_API_KEY_PEM, cert: FAKE_API_CA_PEM }, handler)
      : http.createServer(handler);
    this.server.on(tls ? 'secureConnection' : 'connection', (s: net.Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  static async start(opts: { token: string; tls?: boolean }): Promise<FakeKubeApi> {
    const api = new FakeKubeApi(opts.token, opts.tls ?? false);
    await api.comeUp();
    return api;
  }

  get port(): number {
    return this.portNumber;
  }
  get url(): string {
    return `${this.tls ? 'https' : 'http'}://127.0.0.1:${this.portNumber}`;
  }
  get caPem(): string {
    return FAKE_API_CA_PEM;
  }
  get openWatches(): number {
    return this.watches.size;
  }
  get resourceVersion(): number {
    return this.rv;
  }
  /** Requests of one kind recorded so far. */
  count(kind: 'list' | 'watch'): number {
    return this.requests.filter((r) => r.watch === (kind === 'watch')).length;
  }

  /** Creates or replaces a slice: an ADDED or MODIFIED event. */
  apply(slice: Json): void {
    const key = `${slice.metadata.namespace}/${slice.metadata.name}`;
    const type = this.slices.has(key) ? 'MODIFIED' : 'ADDED';
    const stored = structuredClone(slice);
    stored.metadata.resourceVersion = String(++this.rv);
    this.slices.set(key, stored);
    this.publish({ rv: this.rv, type, object: stored });
  }

  remove(name: string, namespace = 'snowtap'): void {
    const key = `${namespace}/${name}`;
    const old = this.slices.get(key);
    if (old === undefined) throw new Error(`no slice ${key}`);
    this.slices.delete(key);
    const gone = structuredClone(old);
    gone.metadata.resourceVersion = String(++this.rv);
    this.publish({ rv: this.rv, type: 'DELETED', object: gone });
  }

  /** A BOOKMARK with the current resourceVersion to every watch that asked for bookmarks. */
  bookmark(): void {
    const object = { ...KIND_SLICE, metadata: { resourceVersion: String(this.rv) } };
    for (const w of this.watches) if (w.bookmarks) this.send(w.res, 'BOOKMARK', object);
  }

  /** An ERROR event with this Status to every open watch, which then ends (as the server does). */
  errorEvent(code: number, reason: string): void {
    for (const w of this.watches) {
      this.send(w.res, 'ERROR', status(code, reason, `injected ${reason}`));
      w.res.end();
    }
    this.watches.clear();
  }

  /** Like etcd compaction: every resourceVersion up to now is too old to watch from. */
  compact(): void {
    this.compactedRv = this.rv;
  }

  /** Ends every open watch cleanly (as the server does at timeoutSeconds). */
  endWatches(): void {
    for (const w of this.watches) w.res.end();
    this.watches.clear();
  }

  /** The next `times` requests (list or watch) get this HTTP error. */
  failNext(code: number, reason: string, times = 1): void {
    for (let i = 0; i < times; i++) this.failures.push({ code, reason });
  }

  /** The next `times` requests get no answer at all (a black-holed API server). */
  hangNext(times = 1): void {
    this.hangs += times;
  }

  /** API down: stop listening and cut every connection. */
  async goDown(): Promise<void> {
    this.watches.clear();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Listens again on the same port (a fresh random one the first time). */
  async comeUp(): Promise<void> {
    await listen(this.server, { port: this.portNumber, host: '127.0.0.1' });
    this.portNumber = boundPort(this.server);
  }

  async close(): Promise<void> {
    if (this.server.listening) await this.goDown();
  }

  /** A kubeconfig file for this server (token auth) in `dir`; returns its path. */
  writeKubeconfig(dir: string, token = this.token): string {
    const cluster = this.tls
      ? `    certificate-authority-data: ${Buffer.from(FAKE_API_CA_PEM).toString('base64')}\n`
      : '    insecure-skip-tls-verify: true\n';
    const text =
      'apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n' +
      `    server: ${this.url}\n${cluster}` +
      `users:\n- name: fake\n  user:\n    token: ${token}\n` +
      'contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: snowtap\n' +
      'current-context: fake\n';
    const path = join(dir, 'kubeconfig');
    writeFileSync(path, text);
    return path;
  }

  /** The files a pod's service-account mount has, under `root`; returns that directory. */
  writeServiceAccount(root: string, token = this.token): string {
    const dir = join(root, 'var/run/secrets/kubernetes.io/serviceaccount');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'token'), token);
    writeFileSync(join(dir, 'ca.crt'), FAKE_API_CA_PEM);
    writeFileSync(join(dir, 'namespace'), 'snowtap');
    return dir;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://fake');
    const query = Object.fromEntries(url.searchParams);
    const watch = query.watch === '1' || query.watch === 'true';
    const record = (code: number) => this.requests.push({ path: url.pathname, query, watch, status: code });
    const fail = (code: number, reason: string, message: string) => {
      record(code);
      res.writeHead(code, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(status(code, reason, message)));
    };
    if (req.headers.authorization !== `Bearer ${this.token}`) {
      fail(401, 'Unauthorized', 'Unauthorized');
      return;
    }
    if (this.hangs > 0) {
      this.hangs--;
      record(0);
      return;
    }
    const failure = this.failures.shift();
    if (failure) {
      fail(failure.code, failure.reason, `injected ${failure.reason}`);
      return;
    }
    const m = SLICES_PATH.exec(url.pathname);
    if (req.method !== 'GET' || m === null) {
      fail(404, 'NotFound', 'the server could not find the requested resource');
      return;
    }
    const namespace = decodeURIComponent(m[1]!);
    const selector = parseSelector(query.labelSelector ?? '');
    if (!watch) {
      record(200);
      const items = this.matching(namespace, selector).map((s) => {
        const { apiVersion: _a, kind: _k, ...rest } = s;
        return rest;
      });
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(
        JSON.stringify({
          ...KIND_SLICE,
          kind: 'EndpointSliceList',
          metadata: { resourceVersion: String(this.rv) },
          items,
        }),
      );
      return;
    }
    const from = query.resourceVersion ?? '';
    const fromRv = from === '' || from === '0' ? -1 : Number(from);
    if (fromRv !== -1 && fromRv < this.compactedRv && this.expiredAs === 'http') {
      fail(410, 'Expired', `too old resource version: ${fromRv} (${this.compactedRv})`);
      return;
    }
    record(200);
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    res.flushHeaders();
    if (fromRv !== -1 && fromRv < this.compactedRv) {
      this.send(
        res,
        'ERROR',
        status(410, 'Expired', `too old resource version: ${fromRv} (${this.compactedRv})`),
      );
      res.end();
      return;
    }
    const w: OpenWatch = { res, namespace, selector, bookmarks: query.allowWatchBookmarks === 'true' };
    if (fromRv === -1) {
      // No resourceVersion: synthetic ADDED for what exists, then changes (legacy semantics).
      for (const s of this.matching(namespace, selector)) this.send(res, 'ADDED', s);
    } else {
      for (const e of this.log)
        if (e.rv > fromRv && this.matches(w, e.object)) this.send(res, e.type, e.object);
    }
    this.watches.add(w);
    const seconds = Number(query.timeoutSeconds ?? 0);
    const timer = seconds > 0 ? setTimeout(() => res.end(), seconds * 1000) : undefined;
    res.on('close', () => {
      clearTimeout(timer);
      this.watches.delete(w);
    });
  }

  private matching(namespace: string, selector: Array<[string, string]>): Json[] {
    return [...this.slices.values()].filter((s) => this.matches({ namespace, selector }, s));
  }

  private matches(w: Pick<OpenWatch, 'namespace' | 'selector'>, s: Json): boolean {
    if (s.metadata.namespace !== w.namespace) return false;
    return w.selector.every(([k, v]) => s.metadata.labels?.[k] === v);
  }

  private publish(e: StoredEvent): void {
    this.log.push(e);
    for (const w of this.watches) if (this.matches(w, e.object)) this.send(w.res, e.type, e.object);
  }

  private send(res: http.ServerResponse, type: string, object: Json): void {
    if (res.writableEnded) return;
    const obj = type === 'ERROR' ? object : { ...KIND_SLICE, ...object };
    res.write(`${JSON.stringify({ type, object: obj })}\n`);
  }
}

/** Polls `cond` every 5 ms until it holds; throws with `what` after `ms`. */
export async function waitFor(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** `k=v,k2==v2` equality selectors (all the agent sends). */
function parseSelector(text: string): Array<[string, string]> {
  if (text === '') return [];
  return text.split(',').map((term) => {
    const i = term.indexOf('=');
    const value = term.slice(i + (term[i + 1] === '=' ? 2 : 1));
    return [term.slice(0, i), value];
  });
}
