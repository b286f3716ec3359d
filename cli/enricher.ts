// `snowtap enricher`: the enricher server (README "Commands"). Options resolve flags > SNOWTAP_* env >
// --config file; every configuration problem is a UsageError naming the option (exit 2).
// SIGTERM/SIGINT drain (README "Output: CSV chunks"); a second signal exits at once: what was acknowledged is
// already durable, the rest the agents re-send elsewhere.

import { readFileSync } from 'node:fs';
import { createLogger } from '../common/log';
import {
  DEFAULT_DRAIN_TIMEOUT_MS,
  DEFAULT_OUTPUT_RETRY_MS,
  Enricher,
  type EnricherOptions,
  type SecretFilePaths,
  type TlsFilePaths,
} from '../enricher/enricher';
import { enricherIdProblem } from '../enricher/output/layout';
import { POLICY_MAX_BYTES_RANGE, POLICY_POLL_DEFAULTS } from '../enricher/policy/poller';
import {
  LINK_SERVER_DEFAULTS,
  LINK_SERVER_LIMITS,
  OVERLOAD_DEFAULTS,
  OVERLOAD_LIMITS,
} from '../enricher/server/index';
import { isValidId, MAX_AGENT_ID_LENGTH } from '../proto/link/index';
import { DNSTAP_INPUT_OPTIONS, dnstapInputFrom } from './dnstap-input';
import {
  formatHelp,
  libraryNumber,
  logSettings,
  type OptionSpec,
  type OptionValues,
  parseCommand,
  parseHostPort,
  UsageError,
} from './options';
import { aggregatesOption, outputOptions, partitionOptions, rowOptions } from './shared';
import { OUTPUT_OPTIONS } from './specs';
import { checkTlsFiles, SECRET_RELOAD_OPTION, secretReloadMs, tokenFromFile } from './token';

/**
 * --policy-start-timeout default: long enough for a policy server restarting with the
 * enricher, short enough that a wrong URL ends in CrashLoopBackOff with the reason logged.
 */
const DEFAULT_POLICY_START_TIMEOUT_S = 120;

/** The link server's default and range of `field`; scale 1000 shows milliseconds as seconds. */
const link = (field: keyof typeof LINK_SERVER_LIMITS, scale = 1) =>
  libraryNumber(LINK_SERVER_DEFAULTS[field], LINK_SERVER_LIMITS[field], scale);

/** Drain on overload's default and range of `field` (enricher/server/overload.ts). */
const overload = (field: keyof typeof OVERLOAD_LIMITS, scale = 1) =>
  libraryNumber(OVERLOAD_DEFAULTS[field], OVERLOAD_LIMITS[field], scale);

const s = (name: string, arg: string, help: string, extra: Partial<OptionSpec> = {}): OptionSpec => ({
  name,
  kind: 'string',
  arg,
  help,
  ...extra,
});

export const ENRICHER_OPTIONS: readonly OptionSpec[] = [
  s('listen', 'HOST:PORT', 'link listener for agents', { kind: 'hostport', default: '0.0.0.0:7400' }),
  s('dnstap-listen', 'HOST:PORT', 'also take plain dnstap Frame Streams over TCP from a DNS server', {
    kind: 'hostport',
  }),
  ...DNSTAP_INPUT_OPTIONS,
  ...OUTPUT_OPTIONS,
  s('policy-url', 'URL', 'policy document URL (JSON, optionally gzip), polled with If-None-Match'),
  s('policy-interval', 'SECONDS', 'how often the policy URL or file is checked', {
    kind: 'number',
    default: POLICY_POLL_DEFAULTS.intervalMs / 1000,
    min: 1,
  }),
  s('policy-timeout', 'SECONDS', 'deadline of one policy fetch', {
    kind: 'number',
    default: POLICY_POLL_DEFAULTS.timeoutMs / 1000,
    min: 0.1,
  }),
  s(
    'policy-max-bytes',
    'N',
    'largest policy document, fetched body and after gunzip (bounds the memory a policy load takes)',
    { kind: 'int', default: POLICY_POLL_DEFAULTS.maxBodyBytes, ...POLICY_MAX_BYTES_RANGE },
  ),
  s(
    'policy-start-timeout',
    'SECONDS',
    'exit 1 when --policy-url gave no policy this long after start (0 = wait, unready)',
    {
      kind: 'number',
      default: DEFAULT_POLICY_START_TIMEOUT_S,
      min: 0,
    },
  ),
  s('metrics-listen', 'HOST:PORT', '/metrics, /healthz, /readyz', {
    kind: 'hostport',
    default: '0.0.0.0:9400',
  }),
  s('max-connections', 'N', 'open link connections; more are rejected', {
    kind: 'int',
    ...link('maxConnections'),
  }),
  s(
    'max-handshaking',
    'N',
    'link connections still in their TLS/Hello handshake; the oldest is cut beyond it',
    {
      kind: 'int',
      ...link('maxHandshaking'),
    },
  ),
  s('auth-token-file', 'PATH', 'shared token every agent must present (one trailing newline is ignored)'),
  s('tls-cert', 'PATH', 'TLS certificate chain (PEM) for the link listener'),
  s('tls-key', 'PATH', 'TLS private key (PEM)'),
  s('tls-ca', 'PATH', 'CA bundle (PEM): require and verify agent certificates (mTLS)'),
  SECRET_RELOAD_OPTION,
  s('handshake-timeout', 'SECONDS', 'deadline for an agent Hello after connect', {
    kind: 'number',
    ...link('handshakeTimeoutMs', 1000),
  }),
  s('keepalive-interval', 'SECONDS', 'link keepalive advertised to agents (0 = off, else >= 1)', {
    kind: 'number',
    ...link('keepaliveIntervalMs', 1000),
  }),
  s('max-in-flight-batches', 'N', 'unacknowledged batches per connection advised to agents', {
    kind: 'int',
    ...link('maxInFlightBatches'),
  }),
  s('drain-timeout', 'SECONDS', 'on SIGTERM: how long agents get to finish in-flight batches', {
    kind: 'number',
    default: DEFAULT_DRAIN_TIMEOUT_MS / 1000,
    min: 0,
  }),
  {
    name: 'overload-drain',
    kind: 'bool',
    default: OVERLOAD_DEFAULTS.enabled,
    help: 'when saturated, ask some agents to move to another pod (link Drain, reason overload); --no-overload-drain only reports the state',
  },
  s(
    'overload-high',
    'FRACTION',
    'mean event-loop utilisation over --overload-enter at or above which the pod is overloaded',
    {
      kind: 'number',
      ...overload('high'),
    },
  ),
  s('overload-low', 'FRACTION', 'mean utilisation over --overload-leave below which it no longer is', {
    kind: 'number',
    ...overload('low'),
  }),
  s('overload-enter', 'SECONDS', 'window of the entering mean', {
    kind: 'number',
    ...overload('enterMs', 1000),
  }),
  s('overload-leave', 'SECONDS', 'window of the leaving mean', {
    kind: 'number',
    ...overload('leaveMs', 1000),
  }),
  s(
    'overload-drain-fraction',
    'FRACTION',
    'share of the connections carrying traffic asked to move per round',
    {
      kind: 'number',
      ...overload('fraction'),
    },
  ),
  s('overload-drain-interval', 'SECONDS', 'while overloaded: one drain round this often', {
    kind: 'number',
    ...overload('intervalMs', 1000),
  }),
  s('overload-drain-cooldown', 'SECONDS', 'an agent asked to move is not asked again for this long', {
    kind: 'number',
    ...overload('cooldownMs', 1000),
  }),
  s(
    'overload-cpu-limit',
    'MILLICORES',
    "the pod's CPU limit (Downward API limits.cpu, divisor 1m): overloaded also counts CPU used / limit, since a throttled event loop reads idle; 0 = unknown",
    { kind: 'int', ...overload('cpuLimitMillicores') },
  ),
  s(
    'output-retry',
    'SECONDS',
    'after an output failure (disk full, read-only, EIO): close the link, withhold acks and reopen the output this often (0 = exit 1)',
    { kind: 'number', default: DEFAULT_OUTPUT_RETRY_MS / 1000, min: 0 },
  ),
];

export const ENRICHER_HELP = formatHelp(
  'snowtap enricher [options]',
  'Receive dnstap records from agents (and optionally DNS servers), enrich them with the policy, ' +
    'and write CSV chunks for Snowflake.',
  ENRICHER_OPTIONS,
);

function readOption(o: OptionValues, name: string): Buffer | null {
  const file = o[name];
  if (file === undefined) return null;
  try {
    return readFileSync(String(file));
  } catch (err) {
    throw new UsageError(`--${name} ${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? err})`);
  }
}

function authToken(o: OptionValues): Buffer | null {
  const token = readOption(o, 'auth-token-file');
  return token === null ? null : tokenFromFile(token, String(o['auth-token-file']));
}

function tlsOptions(o: OptionValues): EnricherOptions['tls'] {
  const cert = readOption(o, 'tls-cert');
  const key = readOption(o, 'tls-key');
  const ca = readOption(o, 'tls-ca');
  if (cert === null && key === null) {
    if (ca !== null) throw new UsageError('--tls-ca needs --tls-cert and --tls-key (mTLS is on top of TLS)');
    return null;
  }
  if (cert === null || key === null) throw new UsageError('--tls-cert and --tls-key go together');
  checkTlsFiles('--tls-cert/--tls-key/--tls-ca', ca === null ? { cert, key } : { cert, key, ca }, {
    cert: String(o['tls-cert']),
    key: String(o['tls-key']),
    ca: o['tls-ca'] === undefined ? undefined : String(o['tls-ca']),
  });
  return ca === null ? { cert, key } : { cert, key, ca };
}

/** The files behind the token and the TLS material, re-read while running (Secret rotation). */
function secretFiles(o: OptionValues): SecretFilePaths {
  const path = (name: string) => (o[name] === undefined ? undefined : String(o[name]));
  const tls = (prefix: string): TlsFilePaths | undefined => {
    const cert = path(`${prefix}tls-cert`);
    const key = path(`${prefix}tls-key`);
    const ca = path(`${prefix}tls-ca`);
    if (cert === undefined || key === undefined) return undefined;
    return ca === undefined ? { cert, key } : { cert, key, ca };
  };
  const files: SecretFilePaths = {};
  const token = path('auth-token-file');
  if (token !== undefined) files.authToken = token;
  const link = tls('');
  if (link) files.tls = link;
  const dnstap = tls('dnstap-');
  if (dnstap) files.dnstapTls = dnstap;
  return files;
}

function overloadConfig(o: OptionValues): NonNullable<EnricherOptions['link']>['overload'] {
  const ms = (name: string) => Math.round(Number(o[name]) * 1000);
  const high = Number(o['overload-high']);
  const low = Number(o['overload-low']);
  if (low > high) throw new UsageError(`--overload-low (${low}) must not exceed --overload-high (${high})`);
  return {
    enabled: Boolean(o['overload-drain']),
    high,
    low,
    enterMs: ms('overload-enter'),
    leaveMs: ms('overload-leave'),
    fraction: Number(o['overload-drain-fraction']),
    intervalMs: ms('overload-drain-interval'),
    cooldownMs: ms('overload-drain-cooldown'),
    cpuLimitMillicores: Number(o['overload-cpu-limit']),
  };
}

/** Options -> EnricherOptions; throws UsageError naming the problem. */
export function enricherConfig(o: OptionValues, log: EnricherOptions['log']): EnricherOptions {
  const id = String(o.id);
  const idProblem = enricherIdProblem(id);
  if (idProblem !== null || !isValidId(id, MAX_AGENT_ID_LENGTH)) {
    throw new UsageError(`--id '${id}': ${idProblem ?? 'must be made of [A-Za-z0-9._:-]'}`);
  }
  const url = o['policy-url'] === undefined ? undefined : String(o['policy-url']);
  const file = o['policy-file'] === undefined ? undefined : String(o['policy-file']);
  if (url !== undefined && file !== undefined) {
    throw new UsageError('--policy-url and --policy-file are exclusive: give one policy source');
  }
  if (url !== undefined && !/^https?:\/\/[^/]/.test(url)) {
    throw new UsageError(`--policy-url '${url}': expected an http:// or https:// URL`);
  }
  const keepalive = Number(o['keepalive-interval']);
  if (keepalive !== 0 && keepalive < 1) throw new UsageError('--keepalive-interval: 0 (off) or at least 1');
  const hp = (name: string) => (o[name] === undefined ? null : parseHostPort(String(o[name]), `--${name}`));
  return {
    id,
    output: outputOptions(o),
    partition: partitionOptions(o),
    rows: rowOptions(o),
    aggregates: aggregatesOption(o),
    listen: hp('listen')!,
    dnstapListen: hp('dnstap-listen'),
    dnstapInput: dnstapInputFrom(o),
    metricsListen: hp('metrics-listen'),
    link: {
      maxConnections: Number(o['max-connections']),
      maxHandshaking: Number(o['max-handshaking']),
      handshakeTimeoutMs: Math.round(Number(o['handshake-timeout']) * 1000),
      keepaliveIntervalMs: Math.round(keepalive * 1000),
      maxInFlightBatches: Number(o['max-in-flight-batches']),
      overload: overloadConfig(o),
    },
    authToken: authToken(o),
    tls: tlsOptions(o),
    secretFiles: secretFiles(o),
    secretReloadMs: secretReloadMs(o),
    policy:
      url === undefined && file === undefined
        ? null
        : {
            url,
            file,
            intervalMs: Number(o['policy-interval']) * 1000,
            timeoutMs: Number(o['policy-timeout']) * 1000,
            maxBodyBytes: Number(o['policy-max-bytes']),
          },
    maxDataFrameSize: Number(o['max-frame-size']),
    drainTimeoutMs: Math.round(Number(o['drain-timeout']) * 1000),
    policyStartTimeoutMs: Math.round(Number(o['policy-start-timeout']) * 1000),
    outputRetryMs: Math.round(Number(o['output-retry']) * 1000),
    log,
  };
}

export async function enricherMain(argv: readonly string[]): Promise<number> {
  const cmd = parseCommand(argv, ENRICHER_OPTIONS);
  if (cmd.help) {
    process.stdout.write(ENRICHER_HELP);
    return 0;
  }
  const log = createLogger('enricher', logSettings(cmd.options));
  const config = enricherConfig(cmd.options, log);
  // Paths and numbers only: the token and keys are never logged.
  log.info({ config: cmd.options }, 'enricher starting');
  const enricher = new Enricher(config);
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (++signals === 1) {
      log.info({ signal }, 'signal received, draining');
      void enricher.stop(`signal ${signal}`);
    } else {
      log.warn({ signal }, 'second signal, exiting at once (acknowledged rows are durable)');
      process.exit(1);
    }
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    await enricher.start();
    return await enricher.stopped;
  } catch (err) {
    // A start step past its deadline may still hold a libuv thread in a hung file system
    // call, which keeps the process alive: make sure the exit 1 happens.
    if ((err as { code?: string }).code === 'ENRICHER_START_TIMEOUT')
      setTimeout(() => process.exit(1), 1000).unref();
    throw err;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}
