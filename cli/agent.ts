// `snowtap agent`: the sidecar relay. Options per README "Commands" (names are the contract); the
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
import { applyRuntime, DEFAULT_RUNTIME, RUNTIMES, type Runtime } from './agent-runtime';
import { DNSTAP_INPUT_OPTIONS, DNSTAP_SOCKET_MODE_OPTION, dnstapInputFrom } from './dnstap-input';
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
import { checkTlsFiles, SECRET_RELOAD_OPTION, secretReloadMs, tokenFromFile } from './token';

type NumericField = keyof typeof AGENT_LIMITS;

/** Every numeric flag that sets one library field: its flag and scale (values, messages). */
const NUMERIC = new Map<NumericField, { flag: string; scale: number }>();

/** A numeric flag with the library's default and range of `field`; scale 1000 shows ms as seconds. */
function lib(name: string, field: NumericField, arg: string, help: string, scale = 1): OptionSpec {
  NUMERIC.set(field, { flag: name, scale });
  return {
    name,
    kind: AGENT_LIMITS[field].integer && scale === 1 ? 'int' : 'number',
    ...libraryNumber(AGENT_DEFAULTS[field], AGENT_LIMITS[field], scale),
    arg,
    help,
  };
}

/** A library message with the fields the flags set one-to-one named by their flags. */
function withFlagNames(message: string): string {
  const flags = new Map<string, string>([
    ['whenFull', 'when-full'],
    ['sampleMode', 'sample-mode'],
  ]);
  for (const [field, { flag, scale }] of NUMERIC) if (scale === 1) flags.set(field, flag);
  return message.replace(/\b[a-z][A-Za-z]+\b/g, (w) => (flags.has(w) ? `--${flags.get(w)}` : w));
}

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
  lib(
    'switch-interval',
    'switchIntervalMs',
    'SECONDS',
    're-open the idle connection and move traffic to it this often (±20% jitter); 0 = never',
    1000,
  ),
  lib(
    'saturated-switch',
    'saturatedSwitch',
    'FRACTION',
    'switch early when the unacknowledged window stayed full through this fraction of the switch interval (the pod is not keeping up); 1 = only at the interval',
  ),
  {
    name: 'active-connections',
    kind: 'string',
    default: String(AGENT_DEFAULTS.activeConnections),
    arg: 'N|auto',
    help: 'spread batches over N active connections (each with its own standby and switch timer), or auto: 1 up to --max-active-connections from backlog and ack evidence',
  },
  lib(
    'max-active-connections',
    'maxActiveConnections',
    'N',
    'ceiling of --active-connections (auto grows up to it; a number must not exceed it)',
  ),
  lib('buffer-bytes', 'bufferBytes', 'N', 'memory for batches waiting or unacknowledged'),
  {
    name: 'spool-dir',
    kind: 'string',
    arg: 'DIR',
    help: 'write batches that do not fit in memory here (and re-send them after a restart)',
  },
  lib('spool-max-bytes', 'spoolMaxBytes', 'N', 'bound of the spool; --when-full applies beyond it'),
  {
    name: 'spool-fsync',
    kind: 'bool',
    default: AGENT_DEFAULTS.spoolFsync,
    help: 'fsync each spool file: spooled batches survive a node crash too (costs a disk flush per batch)',
  },
  {
    name: 'when-full',
    kind: 'enum',
    values: WHEN_FULL,
    default: AGENT_DEFAULTS.whenFull,
    help: 'what to drop when the buffer (and spool) is full',
  },
  lib(
    'rate-limit',
    'rateLimit',
    'RECORDS_PER_S',
    'drop records above this rate (0 = no limit; --input-file is throttled instead)',
  ),
  lib('sample', 'sample', 'N', 'keep one record in N (sample_rate=N in every row)'),
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
  lib(
    'mask-client-ipv4',
    'maskClientIpv4',
    'BITS',
    "minimise at the edge: keep this many leading bits of IPv4 client addresses and ECS, rewritten in the frame before the spool and the link (the enricher's policy lookups then see the masked address)",
  ),
  lib(
    'mask-client-ipv6',
    'maskClientIpv6',
    'BITS',
    'minimise at the edge: keep this many leading bits of IPv6 client addresses and ECS (as --mask-client-ipv4)',
  ),
  {
    name: 'drop-ecs',
    kind: 'bool',
    default: AGENT_DEFAULTS.dropEcs,
    help: 'minimise at the edge: turn the EDNS Client Subnet option into padding before the spool and the link',
  },
  { name: 'auth-token-file', kind: 'string', arg: 'PATH', help: 'shared token sent in the handshake' },
  { name: 'tls-ca', kind: 'string', arg: 'PATH', help: 'CA (PEM) to verify the enricher; turns TLS on' },
  { name: 'tls-cert', kind: 'string', arg: 'PATH', help: 'client certificate (PEM) for mTLS; turns TLS on' },
  { name: 'tls-key', kind: 'string', arg: 'PATH', help: 'client key (PEM) for mTLS' },
  SECRET_RELOAD_OPTION,
  {
    name: 'id',
    kind: 'string',
    default: hostname(),
    arg: 'NAME',
    help: 'agent id in every record_id (default: hostname = pod name)',
  },
  lib('batch-records', 'batchRecords', 'N', 'records per batch, at most'),
  lib(
    'batch-bytes',
    'batchBytes',
    'N',
    'bytes per batch, at most (one larger record makes a batch of its own)',
  ),
  lib(
    'batch-linger-ms',
    'batchLingerMs',
    'MS',
    'send a batch this long after its first record at the latest',
  ),
  lib(
    'max-in-flight',
    'maxInFlight',
    'N',
    'unacknowledged batches per connection (the enricher may lower it)',
  ),
  lib(
    'max-frame-size',
    'maxFrameSize',
    'BYTES',
    'largest dnstap frame accepted; larger ones are skipped and counted',
  ),
  lib('drain-timeout', 'drainTimeoutMs', 'SECONDS', 'on SIGTERM, wait this long for acknowledgements', 1000),
  lib('handshake-timeout', 'handshakeTimeoutMs', 'SECONDS', 'deadline for connect + Hello/Welcome', 1000),
  lib(
    'input-timeout',
    'inputTimeoutMs',
    'SECONDS',
    '--input-file: exit 1 if not all acknowledged by then (0 = wait)',
    1000,
  ),
  {
    name: 'runtime',
    kind: 'enum',
    values: RUNTIMES,
    default: DEFAULT_RUNTIME,
    help: "lean: re-executed at start with V8's mid-tier compiler as the top tier, one V8 worker thread and one malloc arena (~7 MiB less RSS; Node.js >= 22.15, else full); full: Node's defaults",
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

/** --active-connections: `auto` or an integer in [1, --max-active-connections]. */
function activeConnectionsFrom(v: unknown, max: number): number | 'auto' {
  const s = String(v ?? AGENT_DEFAULTS.activeConnections).trim();
  if (s === 'auto') return 'auto';
  const n = Number(s);
  if (!/^\d+$/.test(s) || n < 1 || n > max) {
    throw new UsageError(
      `--active-connections must be auto or an integer in [1, ${max}] (--max-active-connections), got ${s}`,
    );
  }
  return n;
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
  if (tls !== undefined) checkTlsFiles('--tls-ca/--tls-cert/--tls-key', tls, { ca, cert, key });
  const secretFiles: AgentOptions['secretFiles'] = {};
  if (str('auth-token-file')) secretFiles.authToken = str('auth-token-file');
  if (tls !== undefined) secretFiles.tls = { ca, cert, key };
  const dnstapCert = str('dnstap-tls-cert');
  const dnstapKey = str('dnstap-tls-key');
  if (dnstapCert !== undefined && dnstapKey !== undefined) {
    const dnstapCa = str('dnstap-tls-ca');
    secretFiles.dnstapTls =
      dnstapCa === undefined
        ? { cert: dnstapCert, key: dnstapKey }
        : { cert: dnstapCert, key: dnstapKey, ca: dnstapCa };
  }
  // Seconds become whole milliseconds, never below the field's minimum (0.0001 s -> 1 ms).
  const numbers: Partial<Record<NumericField, number>> = {};
  for (const [field, { flag, scale }] of NUMERIC) {
    const v = Number(o[flag]);
    numbers[field] = scale === 1 ? v : Math.max(AGENT_LIMITS[field].min, Math.round(v * scale));
  }
  return {
    id: String(o.id),
    activeConnections: activeConnectionsFrom(o['active-connections'], numbers.maxActiveConnections!),
    dnstapSocket: str('dnstap-socket'),
    dnstapTcp: str('dnstap-tcp') ? parseHostPort(str('dnstap-tcp')!, '--dnstap-tcp') : undefined,
    dnstapInput: dnstapInputFrom(o),
    inputFile: str('input-file'),
    enrichers,
    spoolDir: str('spool-dir'),
    spoolFsync: o['spool-fsync'] === true,
    dropEcs: o['drop-ecs'] === true,
    whenFull: o['when-full'] as AgentOptions['whenFull'],
    sampleMode: o['sample-mode'] as AgentOptions['sampleMode'],
    ...numbers,
    authToken,
    tls,
    secretFiles,
    secretReloadMs: secretReloadMs(o),
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
  // Options are valid: re-executed here (same PID) unless --runtime full, before anything opens.
  const runtimeNote = applyRuntime(cmd.options.runtime as Runtime);
  const log = createLogger('agent', logSettings(cmd.options));
  if (runtimeNote !== null) log.info(runtimeNote);
  let agent: AgentProcess;
  try {
    agent = new AgentProcess({ agent: { ...config, log }, metricsListen, discovery });
  } catch (err) {
    if (err instanceof AgentError && err.code === AgentErrorCode.INVALID_OPTION) {
      throw new UsageError(withFlagNames(err.message));
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
