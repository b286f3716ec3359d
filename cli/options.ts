// Option resolution shared by every subcommand: flags win over SNOWTAP_* environment
// variables, which win over a YAML/JSON --config file, which wins over defaults.
// Unknown flags and unknown config keys are usage errors that name the key (exit 2).
// Every command also takes the common options (--log-level, --log-format) and --version.
import { readFileSync } from 'node:fs';
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogSettings } from '../common/log';
import { CodedError, type CodedErrorOptions } from '../proto/kit/index';

export type OptionKind = 'string' | 'int' | 'number' | 'bool' | 'hostport' | 'enum' | 'list';

export interface OptionSpec {
  /** Flag name without dashes, kebab-case: also the config-file key. */
  name: string;
  kind: OptionKind;
  help: string;
  default?: unknown;
  /** For 'enum'. */
  values?: readonly string[];
  /** Inclusive bounds for 'int' / 'number'. */
  min?: number;
  max?: number;
  /** Value placeholder in --help. */
  arg?: string;
}

/**
 * Default and range of a numeric option, taken from the library that owns it; `scale`
 * library units make one CLI unit (1000: the library counts milliseconds, the flag seconds).
 */
export function libraryNumber(
  def: number,
  range: { min: number; max: number },
  scale = 1,
): Pick<OptionSpec, 'default' | 'min' | 'max'> {
  return { default: def / scale, min: range.min / scale, max: range.max / scale };
}

export class UsageError extends CodedError<'SNOWTAP_USAGE'> {
  override readonly name = 'UsageError';
  constructor(message: string, options?: CodedErrorOptions) {
    super('SNOWTAP_USAGE', message, options);
  }
}

export type OptionValues = Record<string, unknown>;

export interface ParsedCommand {
  options: OptionValues;
  positionals: string[];
  help: boolean;
  version: boolean;
}

/**
 * Options of every command, resolved like the others (flag, SNOWTAP_* env, config key). No
 * default in the table: a command that is not told picks its own (info; demo: warn).
 */
export const COMMON_OPTIONS: readonly OptionSpec[] = [
  {
    name: 'log-level',
    kind: 'enum',
    values: LOG_LEVELS,
    arg: 'LEVEL',
    help: `log threshold: ${LOG_LEVELS.join('|')} (default: info)`,
  },
  {
    name: 'log-format',
    kind: 'enum',
    values: LOG_FORMATS,
    help: 'json: one JSON object per line (ISO time, level names); text: one readable line (default: json)',
  },
];

/** The command's table plus the common options it does not define itself. */
function withCommon(specs: readonly OptionSpec[]): OptionSpec[] {
  return [...specs, ...COMMON_OPTIONS.filter((c) => !specs.some((s) => s.name === c.name))];
}

/** --log-level / --log-format as createLogger settings; `level` when neither says. */
export function logSettings(o: OptionValues, level?: string): LogSettings {
  return {
    level: o['log-level'] === undefined ? level : String(o['log-level']),
    format: o['log-format'] === undefined ? undefined : (String(o['log-format']) as LogFormat),
  };
}

export function envName(optionName: string): string {
  return 'SNOWTAP_' + optionName.replace(/-/g, '_').toUpperCase();
}

function camelToKebab(s: string): string {
  return s.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase()).replace(/_/g, '-');
}

function unknownKeyMessage(where: string, key: string, specs: readonly OptionSpec[], prefix = ''): string {
  const guess = camelToKebab(key);
  const hint = specs.find((s) => s.name === guess || s.name === key.toLowerCase());
  return hint
    ? `unknown ${where} '${prefix}${key}', use '${prefix}${hint.name}' instead`
    : `unknown ${where} '${prefix}${key}' (run with --help for the list)`;
}

/** Parses and validates one raw value; `source` names where it came from for the error message. */
export function coerce(spec: OptionSpec, raw: unknown, source: string): unknown {
  const bad = (why: string) => new UsageError(`${source}: ${why}`);
  switch (spec.kind) {
    case 'bool': {
      if (typeof raw === 'boolean') return raw;
      const s = String(raw).toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(s)) return true;
      if (['0', 'false', 'no', 'off'].includes(s)) return false;
      throw bad(`expected true or false, got '${raw}'`);
    }
    case 'int':
    case 'number': {
      const s = String(raw).trim();
      const n = typeof raw === 'number' ? raw : s === '' ? Number.NaN : Number(s.replace(/_/g, ''));
      if (!Number.isFinite(n)) throw bad(`expected a number, got '${raw}'`);
      if (spec.kind === 'int' && !Number.isInteger(n)) throw bad(`expected a whole number, got '${raw}'`);
      if (spec.min !== undefined && n < spec.min) throw bad(`must be at least ${spec.min}, got ${n}`);
      if (spec.max !== undefined && n > spec.max) throw bad(`must be at most ${spec.max}, got ${n}`);
      return n;
    }
    case 'enum': {
      const s = String(raw);
      if (!spec.values?.includes(s)) throw bad(`must be one of ${spec.values?.join('|')}, got '${s}'`);
      return s;
    }
    case 'hostport': {
      const s = String(raw);
      parseHostPort(s, source);
      return s;
    }
    case 'list': {
      if (Array.isArray(raw)) return raw.map(String);
      return String(raw)
        .split(',')
        .map((x) => x.trim())
        .filter((x) => x !== '');
    }
    default: {
      if (typeof raw === 'object' && raw !== null) throw bad('expected a string');
      return String(raw);
    }
  }
}

export interface HostPort {
  host: string;
  port: number;
}

/** "HOST:PORT", "[v6]:PORT" or ":PORT" (all interfaces). */
export function parseHostPort(s: string, source = 'address'): HostPort {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(s);
  if (!m) throw new UsageError(`${source}: expected HOST:PORT, got '${s}'`);
  const port = Number(m[3]);
  if (port > 65535) throw new UsageError(`${source}: port ${port} is above 65535`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`--config ${path}: cannot read (${(err as NodeJS.ErrnoException).code ?? err})`);
  }
  let doc: unknown;
  try {
    // yaml (~70 modules, ~10 MiB resident) is loaded only when a YAML file is given: the agent
    // sidecar runs beside every resolver and pays for every module it loads.
    doc = path.endsWith('.json') ? JSON.parse(text) : (require('yaml') as typeof import('yaml')).parse(text);
  } catch (err) {
    throw new UsageError(`--config ${path}: not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'}: ${err}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new UsageError(`--config ${path}: the top level must be a mapping of option names to values`);
  }
  return doc as Record<string, unknown>;
}

/**
 * Resolves a subcommand's options from argv, env and an optional config file.
 * `--flag value`, `--flag=value`, `--bool`, `--no-bool`; `--` ends options.
 */
export function parseCommand(
  argv: readonly string[],
  commandSpecs: readonly OptionSpec[],
  env: NodeJS.ProcessEnv = process.env,
  opts: { positionals?: boolean } = {},
): ParsedCommand {
  const specs = withCommon(commandSpecs);
  const byName = new Map(specs.map((s) => [s.name, s]));
  const fromFlags = new Map<string, unknown>();
  const positionals: string[] = [];
  let configPath: string | undefined;
  let help = false;
  let version = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg === '--help' || arg === '-h') {
      help = true;
      continue;
    }
    if (arg === '--version') {
      version = true;
      continue;
    }
    if (!arg.startsWith('--')) {
      if (!opts.positionals) throw new UsageError(`unexpected argument '${arg}'`);
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    let name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
    let value: unknown = eq >= 0 ? arg.slice(eq + 1) : undefined;
    if (name === 'config') {
      configPath = value !== undefined ? String(value) : argv[++i];
      if (!configPath) throw new UsageError('--config needs a file path');
      continue;
    }
    let spec = byName.get(name);
    if (
      !spec &&
      name.startsWith('no-') &&
      byName.get(name.slice(3))?.kind === 'bool' &&
      value === undefined
    ) {
      name = name.slice(3);
      spec = byName.get(name);
      value = false;
    }
    if (!spec) throw new UsageError(unknownKeyMessage('option', name, specs, '--'));
    if (value === undefined) {
      if (spec.kind === 'bool') value = true;
      else {
        if (i + 1 >= argv.length) throw new UsageError(`--${name} needs a value`);
        value = argv[++i];
      }
    }
    fromFlags.set(name, coerce(spec, value, `--${name}`));
  }
  if (configPath === undefined && env.SNOWTAP_CONFIG) configPath = env.SNOWTAP_CONFIG;

  const options: OptionValues = {};
  for (const s of specs) if (s.default !== undefined) options[s.name] = s.default;
  if (configPath !== undefined) {
    const doc = readConfigFile(configPath);
    for (const [key, raw] of Object.entries(doc)) {
      const spec = byName.get(key);
      if (!spec) throw new UsageError(`--config ${configPath}: ${unknownKeyMessage('key', key, specs)}`);
      options[key] = coerce(spec, raw, `--config ${configPath}: ${key}`);
    }
  }
  for (const s of specs) {
    const v = env[envName(s.name)];
    if (v !== undefined && v !== '') options[s.name] = coerce(s, v, envName(s.name));
  }
  for (const [k, v] of fromFlags) options[k] = v;
  return { options, positionals, help, version };
}

export function formatHelp(usage: string, summary: string, commandSpecs: readonly OptionSpec[]): string {
  const lines = [`Usage: ${usage}`, '', summary, '', 'Options:'];
  const rows = withCommon(commandSpecs).map((s) => {
    const arg = s.kind === 'bool' ? '' : ` ${s.arg ?? (s.kind === 'enum' ? s.values!.join('|') : 'VALUE')}`;
    const def = s.default !== undefined && s.default !== false ? ` (default: ${String(s.default)})` : '';
    return [`  --${s.name}${arg}`, `${s.help}${def} [${envName(s.name)}]`] as [string, string];
  });
  rows.push(['  --config FILE', 'YAML or JSON file with any of these options (flags > env > file)']);
  rows.push(['  --version', 'print the version, the git commit it was built from and the Node version']);
  rows.push(['  --help', 'show this help']);
  const width = Math.min(38, Math.max(...rows.map((r) => r[0].length)) + 2);
  for (const [l, r] of rows)
    lines.push(l.length >= width ? `${l}\n${' '.repeat(width)}${r}` : l.padEnd(width) + r);
  return lines.join('\n') + '\n';
}
