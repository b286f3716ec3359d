// Options of the exposed dnstap inputs, shared by the agent (--dnstap-socket/--dnstap-tcp) and
// the enricher (--dnstap-listen): TLS, a source allow-list, the connection budgets and the
// handshake deadline (issue 10). Defaults and ranges come from common/framestream-listen.ts.
import { readFileSync } from 'node:fs';
import { parseAllowList } from '../common/framestream-admission';
import {
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_HANDSHAKING,
  DEFAULT_SOCKET_MODE,
  type DnstapListenerTuning,
} from '../common/framestream-listen';
import { type OptionSpec, type OptionValues, UsageError } from './options';
import { checkTlsFiles } from './token';

/** Options of every dnstap TCP input (agent --dnstap-tcp, enricher --dnstap-listen). */
export const DNSTAP_INPUT_OPTIONS: readonly OptionSpec[] = [
  {
    name: 'dnstap-tls-cert',
    kind: 'string',
    arg: 'PATH',
    help: 'TLS certificate chain (PEM) for the dnstap TCP input; turns TLS on there',
  },
  {
    name: 'dnstap-tls-key',
    kind: 'string',
    arg: 'PATH',
    help: 'TLS private key (PEM) for the dnstap TCP input',
  },
  {
    name: 'dnstap-tls-ca',
    kind: 'string',
    arg: 'PATH',
    help: 'CA bundle (PEM): require and verify DNS server client certificates (without it none is asked for)',
  },
  {
    name: 'dnstap-allow',
    kind: 'list',
    arg: 'CIDR[,...]',
    help: 'only these sources may connect to the dnstap TCP input (default: any)',
  },
  {
    name: 'dnstap-max-connections',
    kind: 'int',
    default: DEFAULT_MAX_CONNECTIONS,
    min: 1,
    max: 1_000_000,
    arg: 'N',
    help: 'open dnstap streams (past their handshake); more are refused',
  },
  {
    name: 'dnstap-max-handshaking',
    kind: 'int',
    default: DEFAULT_MAX_HANDSHAKING,
    min: 1,
    max: 1_000_000,
    arg: 'N',
    help: 'dnstap connections still in their TLS/Frame Streams handshake; the oldest is cut beyond it',
  },
  {
    name: 'dnstap-handshake-timeout',
    kind: 'number',
    default: DEFAULT_HANDSHAKE_TIMEOUT_MS / 1000,
    min: 0.001,
    max: 3600,
    arg: 'SECONDS',
    help: 'deadline for TLS and READY/START after connect (no idle timeout afterwards)',
  },
];

/** Agent only: the unix socket. */
export const DNSTAP_SOCKET_MODE_OPTION: OptionSpec = {
  name: 'dnstap-socket-mode',
  kind: 'string',
  default: `0${DEFAULT_SOCKET_MODE.toString(8)}`,
  arg: 'OCTAL',
  help: 'mode of the --dnstap-socket file (the DNS server user needs write permission)',
};

function read(flag: string, path: unknown): Buffer | undefined {
  if (path === undefined) return undefined;
  try {
    return readFileSync(String(path));
  } catch (err) {
    throw new UsageError(`--${flag} ${path}: cannot read (${(err as NodeJS.ErrnoException).code ?? err})`);
  }
}

/** Parses "0660" / "660" / "0o660"; UsageError naming the flag otherwise. */
export function parseSocketMode(raw: string): number {
  const m = /^(?:0o?)?([0-7]{1,4})$/.exec(raw.trim());
  const mode = m ? Number.parseInt(m[1]!, 8) : Number.NaN;
  if (!(mode >= 0 && mode <= 0o777)) {
    throw new UsageError(`--dnstap-socket-mode: expected an octal mode such as 0660, got '${raw}'`);
  }
  return mode;
}

/** Flags -> listener tuning; UsageError naming the flag on bad configuration. */
export function dnstapInputFrom(o: OptionValues): DnstapListenerTuning {
  const cert = read('dnstap-tls-cert', o['dnstap-tls-cert']);
  const key = read('dnstap-tls-key', o['dnstap-tls-key']);
  const ca = read('dnstap-tls-ca', o['dnstap-tls-ca']);
  if ((cert === undefined) !== (key === undefined)) {
    throw new UsageError('--dnstap-tls-cert and --dnstap-tls-key go together');
  }
  if (ca !== undefined && cert === undefined) {
    throw new UsageError(
      '--dnstap-tls-ca needs --dnstap-tls-cert and --dnstap-tls-key (client certificates are on top of TLS)',
    );
  }
  let tls: DnstapListenerTuning['tls'] = null;
  if (cert !== undefined && key !== undefined) {
    checkTlsFiles(
      '--dnstap-tls-cert/--dnstap-tls-key/--dnstap-tls-ca',
      ca === undefined ? { cert, key } : { cert, key, ca },
      {
        cert: String(o['dnstap-tls-cert']),
        key: String(o['dnstap-tls-key']),
        ca: o['dnstap-tls-ca'] === undefined ? undefined : String(o['dnstap-tls-ca']),
      },
    );
    tls = ca === undefined ? { cert, key } : { cert, key, ca };
  }
  const allow = o['dnstap-allow'] as string[] | undefined;
  if (allow !== undefined) {
    if (allow.length === 0) throw new UsageError('--dnstap-allow: give at least one CIDR');
    try {
      parseAllowList(allow);
    } catch (err) {
      throw new UsageError(`--dnstap-allow: ${(err as Error).message}`);
    }
  }
  const tuning: DnstapListenerTuning = {
    tls,
    allow: allow ?? null,
    maxConnections: Number(o['dnstap-max-connections']),
    maxHandshaking: Number(o['dnstap-max-handshaking']),
    handshakeTimeoutMs: Math.max(1, Math.round(Number(o['dnstap-handshake-timeout']) * 1000)),
  };
  if (o['dnstap-socket-mode'] !== undefined)
    tuning.socketMode = parseSocketMode(String(o['dnstap-socket-mode']));
  return tuning;
}
