// `snowtap agent`: the sidecar relay. Options per SPEC §1 (names are the contract); the
// agent itself is agent/. Exit codes: 0 stopped cleanly (or a replayed file fully
// acknowledged), 1 runtime failure (or a replay not fully acknowledged), 2 bad usage.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import {
  AGENT_DEFAULTS,
  AGENT_LIMITS,
  AgentError,
  AgentErrorCode,
  type AgentOptions,
  AgentProcess,
  SAMPLE_MODES,
  WHEN_FULL,
} from '../agent';
import {
  DISCOVERY_MODES,
  type DiscoveryMode,
  type DiscoveryTarget,
  isTargetError,
  parseDiscoveryTarget,
} from '../agent/discovery/index';
import { createLogger } from '../common/log';
import { DNSTAP_INPUT_OPTIONS, DNSTAP_SOCKET_MODE_OPTION, dnstapInputFrom } from './dnstap-input';
import {
  formatHelp,
  libraryNumber,
  type OptionSpec,
  type OptionValues,
  parseCommand,
  parseHostPort,
  UsageError,
} from './options';
import { tokenFromFile } from './shared';

/** The library's default and range of `field`; scale 1000 shows milliseconds as seconds. */
const lib = (field: keyof typeof AGENT_LIMITS, scale = 1) =>
  libraryNumber(AGENT_DEFAULTS[field], AGENT_LIMITS[field], scale);

/** Flags that are one library field each, for error messages that name the flag. */
const FLAG_OF_FIELD: Record<string, string> = {
  bufferBytes: 'buffer-bytes',
  spoolMaxBytes: 'spool-max-bytes',
  batchBytes: 'batch-bytes',
  batchRecords: 'batch-records',
  batchLingerMs: 'batch-linger-ms',
  maxInFlight: 'max-in-flight',
  maxFrameSize: 'max-frame-size',
  rateLimit: 'rate-limit',
  sample: 'sample',
  whenFull: 'when-full',
  sampleMode: 'sample-mode',
};

export const AGENT_OPTIONS: readonly OptionSpec[] = [
  {
    name: 'dnstap-socket',
    kind: 'string',
    arg: 'PATH',
    help: 'unix socket to receive dnstap on (the DNS server connects)',
  },
  { name: 'dnstap-tcp', kind: 'hostport', arg: 'HOST:PORT', help: 'TCP address to receive dnstap on' },
  DNSTAP_SOCKET_MODE_OPTION,
  ...DNSTAP_INPUT_OPTIONS,
  {
    name: 'input-file',
    kind: 'string',
    arg: 'PATH',
    help: 'replay a Frame Streams capture, exit 0 once all of it is acknowledged',
  },
  {
    name: 'enricher',
    kind: 'list',
    arg: 'HOST:PORT[,...]',
    help: 'enricher address (the Service); required unless --discovery',
  },
  {
    name: 'discovery',
    kind: 'string',
    arg: 'k8s://NAMESPACE/SERVICE',
    help: "watch the Service's EndpointSlices (k8s://NAMESPACE/SERVICE[:PORT]) and switch at once when ready pods change",
  },
  {
    name: 'discovery-mode',
    kind: 'enum',
    values: DISCOVERY_MODES,
    default: 'service',
    help: 'with --discovery: keep dialing the Service (service) or connect to ready pod addresses directly (direct)',
  },
  {
    name: 'switch-interval',
    kind: 'number',
    ...lib('switchIntervalMs', 1000),
    arg: 'SECONDS',
    help: 're-open the idle connection and move traffic to it this often (±20% jitter); 0 = never',
  },
  {
    name: 'buffer-bytes',
    kind: 'int',
    ...lib('bufferBytes'),
    arg: 'N',
    help: 'memory for batches waiting or unacknowledged',
  },
  {
    name: 'spool-dir',
    kind: 'string',
    arg: 'DIR',
    help: 'write batches that do not fit in memory here (and re-send them after a restart)',
  },
  {
    name: 'spool-max-bytes',
    kind: 'int',
    ...lib('spoolMaxBytes'),
    arg: 'N',
    help: 'bound of the spool; --when-full applies beyond it',
  },
  {
    name: 'when-full',
    kind: 'enum',
    values: WHEN_FULL,
    default: AGENT_DEFAULTS.whenFull,
    help: 'what to drop when the buffer (and spool) is full',
  },
  {
    name: 'rate-limit',
    kind: 'number',
    ...lib('rateLimit'),
    arg: 'RECORDS_PER_S',
    help: 'drop records above this rate (0 = no limit; --input-file is throttled instead)',
  },
  {
    name: 'sample',
    kind: 'int',
    ...lib('sample'),
    arg: 'N',
    help: 'keep one record in N (sample_rate=N in every row)',
  },
  {
    name: 'sample-mode',
    kind: 'enum',
    values: SAMPLE_MODES,
    default: AGENT_DEFAULTS.sampleMode,
    help: 'every Nth record, or each with probability 1/N',
  },
  {
    name: 'metrics-listen',
    kind: 'hostport',
    default: '0.0.0.0:9401',
    arg: 'HOST:PORT',
    help: '/metrics, /healthz, /readyz',
  },
  { name: 'auth-token-file', kind: 'string', arg: 'PATH', help: 'shared token sent in the handshake' },
  { name: 'tls-ca', kind: 'string', arg: 'PATH', help: 'CA (PEM) to verify the enricher; turns TLS on' },
  { name: 'tls-cert', kind: 'string', arg: 'PATH', help: 'client certificate (PEM) for mTLS; turns TLS on' },
  { name: 'tls-key', kind: 'string', arg: 'PATH', help: 'client key (PEM) for mTLS' },
  {
    name: 'id',
    kind: 'string',
    default: hostname(),
    arg: 'NAME',
    help: 'agent id in every record_id (default: hostname = pod name)',
  },
  {
    name: 'batch-records',
    kind: 'int',
    ...lib('batchRecords'),
    arg: 'N',
    help: 'records per batch, at most',
  },
  {
    name: 'batch-bytes',
    kind: 'int',
    ...lib('batchBytes'),
    arg: 'N',
    help: 'bytes per batch, at most (one larger record makes a batch of its own)',
  },
  {
    name: 'batch-linger-ms',
    kind: 'int',
    ...lib('batchLingerMs'),
    arg: 'MS',
    help: 'send a batch this long after its first record at the latest',
  },
  {
    name: 'max-in-flight',
    kind: 'int',
    ...lib('maxInFlight'),
    arg: 'N',
    help: 'unacknowledged batches per connection (the enricher may lower it)',
  },
  {
    name: 'max-frame-size',
    kind: 'int',
    ...lib('maxFrameSize'),
    arg: 'BYTES',
    help: 'largest dnstap frame accepted; larger ones are skipped and counted',
  },
  {
    name: 'drain-timeout',
    kind: 'number',
    ...lib('drainTimeoutMs', 1000),
    arg: 'SECONDS',
    help: 'on SIGTERM, wait this long for acknowledgements',
  },
  {
    name: 'handshake-timeout',
    kind: 'number',
    ...lib('handshakeTimeoutMs', 1000),
    arg: 'SECONDS',
    help: 'deadline for connect + Hello/Welcome',
  },
  {
    name: 'input-timeout',
    kind: 'number',
    ...lib('inputTimeoutMs', 1000),
    arg: 'SECONDS',
    help: '--input-file: exit 1 if not all acknowledged by then (0 = wait)',
  },
];

export const AGENT_HELP = formatHelp(
  'snowtap agent [options]',
  'Relay dnstap from a DNS server (unix socket, TCP, or a capture file) to the enrichers.',
  AGENT_OPTIONS,
);

export interface DiscoveryConfig {
  target: DiscoveryTarget;
  mode: DiscoveryMode;
}

export function discoveryFrom(o: OptionValues): DiscoveryConfig | undefined {
  if (o.discovery === undefined) return undefined;
  try {
    return { target: parseDiscoveryTarget(String(o.discovery)), mode: o['discovery-mode'] as DiscoveryMode };
  } catch (err) {
    if (isTargetError(err)) {
      const msg = (err as Error).message;
      throw new UsageError(msg.startsWith('--discovery') ? msg : `--discovery: ${msg}`);
    }
    throw err;
  }
}

function readFile(flag: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new UsageError(`--${flag} ${path}: cannot read (${(err as NodeJS.ErrnoException).code ?? err})`);
  }
}

/** Flags -> AgentOptions (without log); UsageError naming the flag on bad configuration. */
export function agentOptionsFrom(o: OptionValues): Omit<AgentOptions, 'log'> {
  const str = (k: string) => (o[k] === undefined ? undefined : String(o[k]));
  if (!str('dnstap-socket') && !str('dnstap-tcp') && !str('input-file')) {
    throw new UsageError('agent needs an input: --dnstap-socket, --dnstap-tcp or --input-file');
  }
  if (str('input-file') && (str('dnstap-socket') || str('dnstap-tcp'))) {
    throw new UsageError('--input-file cannot be combined with --dnstap-socket/--dnstap-tcp');
  }
  const discovery = discoveryFrom(o);
  const list = (o.enricher as string[] | undefined) ?? [];
  // With discovery and no --enricher, dial the Service by its cluster DNS name.
  if (list.length === 0 && discovery)
    list.push(
      `${discovery.target.service}.${discovery.target.namespace}.svc:${typeof discovery.target.port === 'number' ? discovery.target.port : 7400}`,
    );
  if (list.length === 0) throw new UsageError('--enricher HOST:PORT is required (or --discovery)');
  const enrichers = list.map((s) => parseHostPort(s, '--enricher'));
  for (const e of enrichers)
    if (e.port === 0) throw new UsageError('--enricher: port 0 is not an address to connect to');
  let authToken: string | undefined;
  if (str('auth-token-file')) {
    const path = str('auth-token-file')!;
    authToken = tokenFromFile(readFile('auth-token-file', path), path).toString('utf8');
  }
  const ca = str('tls-ca');
  const cert = str('tls-cert');
  const key = str('tls-key');
  if ((cert === undefined) !== (key === undefined))
    throw new UsageError('--tls-cert and --tls-key go together');
  const tls =
    ca || cert
      ? {
          ca: ca ? readFile('tls-ca', ca) : undefined,
          cert: cert ? readFile('tls-cert', cert) : undefined,
          key: key ? readFile('tls-key', key) : undefined,
        }
      : undefined;
  return {
    id: String(o.id),
    dnstapSocket: str('dnstap-socket'),
    dnstapTcp: str('dnstap-tcp') ? parseHostPort(str('dnstap-tcp')!, '--dnstap-tcp') : undefined,
    dnstapInput: dnstapInputFrom(o),
    inputFile: str('input-file'),
    enrichers,
    switchIntervalMs: Math.round(Number(o['switch-interval']) * 1000),
    bufferBytes: Number(o['buffer-bytes']),
    spoolDir: str('spool-dir'),
    spoolMaxBytes: Number(o['spool-max-bytes']),
    whenFull: o['when-full'] as AgentOptions['whenFull'],
    rateLimit: Number(o['rate-limit']),
    sample: Number(o.sample),
    sampleMode: o['sample-mode'] as AgentOptions['sampleMode'],
    batchRecords: Number(o['batch-records']),
    batchBytes: Number(o['batch-bytes']),
    batchLingerMs: Number(o['batch-linger-ms']),
    maxInFlight: Number(o['max-in-flight']),
    maxFrameSize: Number(o['max-frame-size']),
    drainTimeoutMs: Math.max(1, Math.round(Number(o['drain-timeout']) * 1000)),
    handshakeTimeoutMs: Math.max(1, Math.round(Number(o['handshake-timeout']) * 1000)),
    inputTimeoutMs: Math.round(Number(o['input-timeout']) * 1000),
    authToken,
    tls,
  };
}

/**
 * Runs the agent process (agent/process.ts) until SIGTERM/SIGINT (or, with --input-file,
 * until the capture is acknowledged). Meant for the CLI process: once stopped, it lets the
 * process exit even if a reconnect backoff timer (not cancellable in exponential-backoff)
 * is still pending.
 */
export async function agentMain(argv: readonly string[]): Promise<number> {
  const cmd = parseCommand(argv, AGENT_OPTIONS);
  if (cmd.help) {
    process.stdout.write(AGENT_HELP);
    return 0;
  }
  const config = agentOptionsFrom(cmd.options);
  const metricsListen = parseHostPort(String(cmd.options['metrics-listen']), '--metrics-listen');
  const discovery = discoveryFrom(cmd.options);
  const log = createLogger('agent');
  let agent: AgentProcess;
  try {
    agent = new AgentProcess({ agent: { ...config, log }, metricsListen, discovery });
  } catch (err) {
    if (err instanceof AgentError && err.code === AgentErrorCode.INVALID_OPTION) {
      throw new UsageError(
        err.message.replace(/\b[a-z][A-Za-z]+\b/g, (w) =>
          Object.hasOwn(FLAG_OF_FIELD, w) ? `--${FLAG_OF_FIELD[w]}` : w,
        ),
      );
    }
    throw err;
  }
  const onSignal = (signal: string) => {
    log.info({ signal }, 'stopping');
    agent.stop();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    return await agent.run();
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    setTimeout(() => process.exit(), 1000).unref();
  }
}
