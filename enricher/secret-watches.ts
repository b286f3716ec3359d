// Secret files of the enricher re-read while it runs (common/secret-files.ts does the
// reading, the kubelet-style swap detection and the refusals): what each one is and where a
// new value goes.
import type { FrameStreamServer } from '../common/framestream-server';
import type { Logger } from '../common/log';
import {
  checkTlsMaterial,
  readOrEmpty,
  SECRET_RELOAD_INTERVAL_MS,
  SecretWatch,
  type SecretWatchOptions,
  type TlsMaterial,
  tokenFromBytes,
} from '../common/secret-files';
import type { EnricherOptions, TlsFilePaths } from './enricher-options';
import { keyFromBytes } from './pipeline/pseudonym';
import type { LinkServer } from './server/index';

/** What a rotated secret is put into: the servers of the moment (null while the output is down). */
export interface SecretTargets {
  link(): LinkServer | null;
  dnstap(): FrameStreamServer | null;
}

/**
 * Rotated Secrets without a restart: the token, the link and dnstap TLS material and the
 * pseudonym key are re-read (the kubelet's `..data` swap is invisible to file watches) and
 * used for new connections and rows; a refused update keeps the current one, logged.
 * Returns the started watches (stop() each at teardown).
 */
export function watchSecrets(
  o: EnricherOptions,
  targets: SecretTargets,
  log: Logger,
): SecretWatch<unknown>[] {
  const started: SecretWatch<unknown>[] = [];
  const f = o.secretFiles ?? {};
  const intervalMs = o.secretReloadMs ?? SECRET_RELOAD_INTERVAL_MS;
  // Every watch starts from the bytes in use now (read at start), in `paths` order.
  const watch = <T>(w: Omit<SecretWatchOptions<T>, 'initial' | 'log' | 'intervalMs'>) => {
    const watcher = new SecretWatch<T>({ ...w, initial: w.paths.map(readOrEmpty), log, intervalMs });
    started.push(watcher as SecretWatch<unknown>);
    watcher.start();
  };
  if (f.authToken !== undefined && o.authToken) {
    const path = f.authToken;
    watch<Buffer>({
      id: 'link_token',
      what: 'link auth token',
      paths: [path],
      load: ([bytes]) => tokenFromBytes(bytes!, path),
      apply: (token) => {
        o.authToken = token;
        targets.link()?.setAuthToken(token);
      },
    });
  }
  // Link and dnstap TLS: the same files-to-material steps; a new certificate serves new connections.
  const watchTls = (
    id: string,
    what: string,
    files: TlsFilePaths,
    apply: (tls: { cert: Buffer; key: Buffer; ca?: Buffer }) => void,
  ) => {
    watch<TlsMaterial>({
      id,
      what,
      paths: tlsPaths(files),
      load: (c) => tlsFrom(files, c),
      apply: (m) => apply({ cert: m.cert!, key: m.key!, ...(m.ca ? { ca: m.ca } : {}) }),
    });
  };
  if (f.tls !== undefined && o.tls)
    watchTls('link_tls', 'link TLS certificate', f.tls, (tls) => {
      o.tls = tls;
      targets.link()?.setTls(tls);
    });
  const input = o.dnstapInput;
  if (f.dnstapTls !== undefined && input?.tls)
    watchTls('dnstap_tls', 'dnstap TLS certificate', f.dnstapTls, (tls) => {
      input.tls = tls;
      targets.dnstap()?.setTls(tls);
    });
  const pseudo = o.rows?.pseudonymizer;
  if (pseudo?.path) {
    const path = pseudo.path;
    watch<Buffer>({
      id: 'pseudonym_key',
      what: 'pseudonym key',
      paths: [path],
      load: ([bytes]) => keyFromBytes(bytes!, path),
      apply: (key) => {
        pseudo.setKey(key);
        log.info({ keyId: pseudo.keyId.toString() }, 'pseudonym key id');
      },
    });
  }
  return started;
}

function tlsPaths(t: TlsFilePaths): string[] {
  return t.ca === undefined ? [t.cert, t.key] : [t.cert, t.key, t.ca];
}

function tlsFrom(t: TlsFilePaths, c: readonly Buffer[]): TlsMaterial {
  const m: TlsMaterial = { cert: c[0]!, key: c[1]!, ...(c[2] ? { ca: c[2] } : {}) };
  checkTlsMaterial(m, t);
  return m;
}
