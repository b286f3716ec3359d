// The two API calls discovery needs - list and watch EndpointSlices of one Service - on top
// of @kubernetes/client-node 1.4 (KubeConfig for credentials and TLS, the generated
// DiscoveryV1Api for the list, Watch for the stream), with what that version leaves out:
//  - deadlines: Watch has none (its AbortSignal.timeout is overwritten) and the generated
//    list has none, so a black-holed API server would hang us; here both get one, and a
//    watch that goes silent past the server-side timeout is ended by us;
//  - errors as DiscoveryError with a code (Watch gives an Error with statusCode, the list
//    an ApiException with code, the transport a FetchError with errno);
//  - a handler error inside the Watch callback would be swallowed by its JSON try/catch.
// The package is an ES module that takes ~250 ms to load; it is loaded on first use, so
// agents without --discovery never pay for it.

import type * as K8s from '@kubernetes/client-node';
import type { EndpointSliceLike } from './endpoints';
import { DiscoveryError, DiscoveryErrorCode } from './errors';
import { type DiscoveryTarget, endpointSlicesPath, serviceLabelSelector } from './target';

type K8sModule = typeof K8s;
let k8sModule: Promise<K8sModule> | undefined;
function loadClientNode(): Promise<K8sModule> {
  k8sModule ??= import('@kubernetes/client-node');
  return k8sModule;
}

/** Where the API server address and credentials come from. */
export type KubeConfigSource =
  /** $KUBECONFIG, else ~/.kube/config, else the pod's service account (the usual case). */
  | { kind: 'default' }
  | { kind: 'file'; path: string }
  /** The service-account files under `root` + /var/run/secrets/kubernetes.io/serviceaccount
   * and KUBERNETES_SERVICE_HOST/PORT; `root` exists for tests (default ''). */
  | { kind: 'in-cluster'; root?: string };

/** client-node's fallback when it finds nothing: never a real API server for us. */
const NOTHING_FOUND_SERVER = 'http://localhost:8080';

export async function loadKubeConfig(source: KubeConfigSource): Promise<K8s.KubeConfig> {
  const k8s = await loadClientNode();
  const kc = new k8s.KubeConfig();
  try {
    if (source.kind === 'file') kc.loadFromFile(source.path);
    else if (source.kind === 'in-cluster') kc.loadFromCluster(source.root ?? '');
    else kc.loadFromDefault();
  } catch (err) {
    throw new DiscoveryError(DiscoveryErrorCode.CONFIG, `cannot load Kubernetes config: ${message(err)}`, {
      cause: err,
    });
  }
  const server = kc.getCurrentCluster()?.server;
  if (server === undefined || server === NOTHING_FOUND_SERVER || server.includes('undefined')) {
    throw new DiscoveryError(
      DiscoveryErrorCode.CONFIG,
      'no Kubernetes API server configured: not in a pod (KUBERNETES_SERVICE_HOST and the ' +
        'service-account token) and no kubeconfig ($KUBECONFIG, ~/.kube/config)',
    );
  }
  return kc;
}

export interface ListResult {
  items: EndpointSliceLike[];
  resourceVersion: string;
}

export interface WatchTimeouts {
  /** Server-side end of the watch (the API server closes it then; we reconnect). */
  timeoutSeconds: number;
  /** No response headers by then: give up. */
  headersMs: number;
  /** Nothing at all (not even a bookmark) for this long: the connection is presumed dead. */
  idleMs: number;
}

export interface WatchHandle {
  /** Resolves when the server ends the stream; rejects (DiscoveryError) on failure or end(err). */
  readonly ended: Promise<void>;
  /** Ends the watch now; with `err`, `ended` rejects with it. */
  end(err?: DiscoveryError): void;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

export class KubeApi {
  private readonly path: string;
  private readonly selector: string;
  private readonly lists = new Set<AbortController>();

  private constructor(
    private readonly k8s: K8sModule,
    readonly kc: K8s.KubeConfig,
    private readonly target: DiscoveryTarget,
    private readonly api: K8s.DiscoveryV1Api,
  ) {
    this.path = endpointSlicesPath(target);
    this.selector = serviceLabelSelector(target);
  }

  static async create(source: KubeConfigSource, target: DiscoveryTarget): Promise<KubeApi> {
    const kc = await loadKubeConfig(source);
    const k8s = await loadClientNode();
    return new KubeApi(k8s, kc, target, kc.makeApiClient(k8s.DiscoveryV1Api));
  }

  get server(): string {
    return this.kc.getCurrentCluster()?.server ?? '';
  }

  /** Current slices and the resourceVersion to watch from (a consistent read). */
  async list(timeoutMs: number): Promise<ListResult> {
    const ac = new AbortController();
    this.lists.add(ac);
    const timer = setTimeout(() => ac.abort(), timeoutMs);
    // The generated client has no timeout option; a middleware hands fetch our signal.
    const withSignal: K8s.ConfigurationOptions<K8s.ObservableMiddleware> = {
      middleware: [
        {
          pre: (ctx) => {
            ctx.setSignal(ac.signal);
            return new this.k8s.Observable(Promise.resolve(ctx));
          },
          post: (res) => new this.k8s.Observable(Promise.resolve(res)),
        },
      ],
      middlewareMergeStrategy: 'append',
    };
    try {
      const res = await this.api.listNamespacedEndpointSlice(
        { namespace: this.target.namespace, labelSelector: this.selector },
        withSignal,
      );
      return { items: res.items ?? [], resourceVersion: res.metadata?.resourceVersion ?? '' };
    } catch (err) {
      if (ac.signal.aborted) {
        throw new DiscoveryError(DiscoveryErrorCode.TIMEOUT, `list: no answer within ${timeoutMs} ms`, {
          cause: err,
        });
      }
      throw classifyApiError(err, 'list');
    } finally {
      clearTimeout(timer);
      this.lists.delete(ac);
    }
  }

  /** Aborts lists in flight (stop()). */
  abortLists(): void {
    for (const ac of this.lists) ac.abort();
  }

  /**
   * Watches from `resourceVersion`; `onEvent` gets every event, ERROR included. `onOpen` is
   * called once the server answered 200 (the stream is open), never after the watch ended.
   */
  watch(
    resourceVersion: string,
    t: WatchTimeouts,
    onEvent: (type: WatchEventType, obj: unknown) => void,
    onOpen: () => void,
  ): WatchHandle {
    let settled = false;
    let controller: AbortController | undefined;
    let timer: NodeJS.Timeout | undefined;
    let settle!: { resolve: () => void; reject: (e: DiscoveryError) => void };
    const ended = new Promise<void>((resolve, reject) => {
      settle = { resolve, reject };
    });
    const end = (err?: DiscoveryError): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      controller?.abort();
      if (err === undefined) settle.resolve();
      else settle.reject(err);
    };
    const arm = (ms: number, what: string): void => {
      clearTimeout(timer);
      timer = setTimeout(
        () => end(new DiscoveryError(DiscoveryErrorCode.TIMEOUT, `watch: ${what} in ${ms} ms`)),
        ms,
      );
    };
    arm(t.headersMs, 'no response');
    const query = {
      labelSelector: this.selector,
      resourceVersion,
      allowWatchBookmarks: true,
      timeoutSeconds: t.timeoutSeconds,
    };
    const onLine = (type: string, obj: unknown): void => {
      if (settled) return;
      arm(t.idleMs, 'nothing received');
      try {
        onEvent(type as WatchEventType, obj);
      } catch (err) {
        end(
          new DiscoveryError(DiscoveryErrorCode.API, `watch event handler failed: ${message(err)}`, {
            cause: err,
          }),
        );
      }
    };
    const onDone = (err: unknown): void => end(err == null ? undefined : classifyApiError(err, 'watch'));
    new this.k8s.Watch(this.withHeadersDeadline(t.headersMs)).watch(this.path, query, onLine, onDone).then(
      (c) => {
        if (settled) c.abort();
        else {
          controller = c;
          arm(t.idleMs, 'nothing received');
          onOpen();
        }
      },
      (err) => end(classifyApiError(err, 'watch')),
    );
    return { ended, end };
  }

  /**
   * Our KubeConfig as Watch sees it, plus node-fetch's `timeout` (until response headers
   * only): Watch hands out its AbortController only after the headers, so without this a
   * request that never gets an answer could not be cancelled and would hold its socket.
   */
  private withHeadersDeadline(ms: number): K8s.KubeConfig {
    const kc = this.kc;
    const view = Object.create(kc) as K8s.KubeConfig;
    view.applyToFetchOptions = async (opts) => ({ ...(await kc.applyToFetchOptions(opts)), timeout: ms });
    return view;
  }
}

const TLS_CODES = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|ERR_OSSL_)/;

/** Any failure of a request as a DiscoveryError (stable code, original as cause). */
export function classifyApiError(err: unknown, what: string): DiscoveryError {
  if (err instanceof DiscoveryError) return err;
  const e = (err ?? {}) as {
    statusCode?: unknown;
    code?: unknown;
    errno?: unknown;
    body?: unknown;
    name?: unknown;
    type?: unknown;
  };
  const status =
    typeof e.statusCode === 'number' ? e.statusCode : typeof e.code === 'number' ? e.code : undefined;
  if (status !== undefined) {
    const code =
      status === 401
        ? DiscoveryErrorCode.UNAUTHORIZED
        : status === 403
          ? DiscoveryErrorCode.FORBIDDEN
          : status === 404
            ? DiscoveryErrorCode.NOT_FOUND
            : status === 410
              ? DiscoveryErrorCode.EXPIRED
              : status === 408 || status === 504
                ? DiscoveryErrorCode.TIMEOUT
                : DiscoveryErrorCode.API;
    const text =
      statusMessage(e.body) ?? /\nMessage: (.*)/.exec(String((err as Error).message))?.[1] ?? message(err);
    return new DiscoveryError(code, `${what}: HTTP ${status} ${text}`, {
      cause: err,
      status,
    });
  }
  const sys = typeof e.code === 'string' ? e.code : typeof e.errno === 'string' ? e.errno : '';
  if (TLS_CODES.test(sys)) {
    return new DiscoveryError(DiscoveryErrorCode.TLS, `${what}: TLS: ${message(err)}`, { cause: err });
  }
  if (sys === 'ETIMEDOUT' || e.name === 'AbortError' || e.type === 'request-timeout') {
    return new DiscoveryError(DiscoveryErrorCode.TIMEOUT, `${what}: ${message(err)}`, { cause: err });
  }
  if (/HTTP protocol is not allowed|No (currently )?active cluster/.test(message(err))) {
    return new DiscoveryError(DiscoveryErrorCode.CONFIG, `${what}: ${message(err)}`, { cause: err });
  }
  return new DiscoveryError(DiscoveryErrorCode.UNREACHABLE, `${what}: ${message(err)}`, { cause: err });
}

/** The `message` of a Kubernetes Status body, when the error carries one. */
function statusMessage(body: unknown): string | undefined {
  let b = body;
  if (typeof b === 'string') {
    try {
      b = JSON.parse(b);
    } catch {
      return undefined;
    }
  }
  const m = (b as { message?: unknown } | null)?.message;
  return typeof m === 'string' ? m : undefined;
}

/** First line only: ApiException messages carry the whole body and headers after it. */
function message(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n', 1)[0]!;
}
