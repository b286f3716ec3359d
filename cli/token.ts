// The shared link token (--auth-token-file), read the same way by the agent and the enricher
// (common/secret-files.ts, which also re-reads it when the Secret is rotated).
// Kept apart from ./shared so that the agent sidecar loads none of the enricher's output code.
import {
  checkTlsMaterial,
  SECRET_RELOAD_INTERVAL_MS,
  SECRET_RELOAD_RANGE_MS,
  type TlsMaterial,
  tokenFromBytes,
} from '../common/secret-files';
import { libraryNumber, type OptionSpec, type OptionValues, UsageError } from './options';

/**
 * The shared link token from --auth-token-file contents. Secrets written with `echo` or
 * kubectl end with a newline: the token is what precedes it (agent and enricher agree).
 */
export function tokenFromFile(bytes: Buffer, path: string): Buffer {
  try {
    return tokenFromBytes(bytes, path);
  } catch (err) {
    throw new UsageError(`--auth-token-file ${(err as Error).message}`);
  }
}

/** --secret-reload-interval: agent and enricher (token, certificates, keys; Secret rotation). */
export const SECRET_RELOAD_OPTION: OptionSpec = {
  name: 'secret-reload-interval',
  kind: 'number',
  ...libraryNumber(SECRET_RELOAD_INTERVAL_MS, SECRET_RELOAD_RANGE_MS, 1000),
  arg: 'SECONDS',
  help: 're-read the token, certificate, key and CA files this often; changed ones are used for new connections (a rotated Kubernetes Secret), bad ones refused and logged',
};

export function secretReloadMs(o: OptionValues): number {
  return Math.round(Number(o['secret-reload-interval']) * 1000);
}

/** TLS material from the files given at start: checked now (expiry, key match), UsageError otherwise. */
export function checkTlsFiles(
  flags: string,
  m: TlsMaterial,
  names: { cert?: string; key?: string; ca?: string },
): void {
  try {
    checkTlsMaterial(m, names);
  } catch (err) {
    throw new UsageError(`${flags}: ${(err as Error).message}`);
  }
}
