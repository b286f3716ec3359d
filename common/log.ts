// Logs on stderr, one line per event, never one per record. JSON lines by default, with
// ISO-8601 times and level names ({"level":"info","time":"2026-...Z","component":"agent",...,
// "msg":"..."}: pino's layout, which the project used until 2026-12); `text` is one
// human-readable line per event for a terminal.
//
// Our own ~100 lines instead of pino: every line here is an event (start, stop, a connection,
// a failure), so there is no throughput to win, and pino brought worker_threads, assert,
// thread-stream and sonic-boom into every process: 2.2 MiB of the agent sidecar's idle RSS
// (measured on Node 24, `--runtime lean`: 59.7 -> 57.5 MiB). Writes are synchronous, so the
// last lines before an exit (or a crash) are never lost.
import { writeSync } from 'node:fs';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ['json', 'text'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

type Emitting = Exclude<LogLevel, 'silent'>;
const RANK: Record<LogLevel, number> = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
  silent: Infinity,
};

/** log.info({ field: value }, 'message') or log.info('message'). */
export interface LogFn {
  (fields: object, msg?: string): void;
  (msg: string): void;
}

export interface Logger {
  readonly level: LogLevel;
  fatal: LogFn;
  error: LogFn;
  warn: LogFn;
  info: LogFn;
  debug: LogFn;
  trace: LogFn;
  /** A logger whose lines also carry `bindings` (after the parent's, before each call's fields). */
  child(bindings: Record<string, unknown>): Logger;
  isLevelEnabled(level: LogLevel): boolean;
}

export interface LogSettings {
  /** Default: $SNOWTAP_LOG_LEVEL, else info. */
  level?: string;
  /** Default: json. */
  format?: LogFormat;
}

/** An error as a JSON value: its class, message, stack, own fields (code, errno, ...) and cause. */
export function serializeError(err: Error, seen = new Set<unknown>()): Record<string, unknown> {
  seen.add(err);
  const out: Record<string, unknown> = {
    type: err.constructor?.name ?? 'Error',
    message: err.message,
    stack: err.stack,
  };
  for (const [k, v] of Object.entries(err)) if (!(k in out)) out[k] = v;
  const cause = (err as { cause?: unknown }).cause;
  if (cause instanceof Error && !seen.has(cause)) out.cause = serializeError(cause, seen);
  else if (cause !== undefined && !(cause instanceof Error)) out.cause = cause;
  return out;
}

/** JSON.stringify that never throws: errors serialized, bigints as numbers, an object met twice marked. */
function stringify(o: Record<string, unknown>): string {
  const seen = new WeakSet<object>();
  try {
    return JSON.stringify(o, (_key, value: unknown) => {
      if (typeof value === 'bigint') return Number(value);
      if (value === null || typeof value !== 'object') return value;
      if (seen.has(value)) return '[Circular]';
      seen.add(value);
      return value instanceof Error ? serializeError(value) : value;
    });
  } catch (err) {
    return JSON.stringify({ level: o.level, time: o.time, msg: String(o.msg), logError: String(err) });
  }
}

/** The level threshold from settings, the environment, or info; an unknown name is an error. */
function levelOf(name: string): LogLevel {
  if ((LOG_LEVELS as readonly string[]).includes(name)) return name as LogLevel;
  throw new Error(`unknown log level "${name}" (expected one of ${LOG_LEVELS.join('|')})`);
}

const sleepCell = new Int32Array(new SharedArrayBuffer(4));

/** Writes all of `line` to stderr now; waits out EAGAIN (a non-blocking pipe), drops it on other errors. */
function writeStderr(line: string): void {
  const buf = Buffer.from(line);
  let off = 0;
  for (let tries = 0; off < buf.length && tries < 1000; ) {
    try {
      off += writeSync(2, buf, off);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') return; // stderr gone: logging must not kill us
      tries++;
      Atomics.wait(sleepCell, 0, 0, 1);
    }
  }
}

class LineLogger implements Logger {
  readonly fatal: LogFn;
  readonly error: LogFn;
  readonly warn: LogFn;
  readonly info: LogFn;
  readonly debug: LogFn;
  readonly trace: LogFn;

  constructor(
    readonly level: LogLevel,
    private readonly bindings: Record<string, unknown>,
    private readonly write: (line: string) => void,
  ) {
    this.fatal = this.method('fatal');
    this.error = this.method('error');
    this.warn = this.method('warn');
    this.info = this.method('info');
    this.debug = this.method('debug');
    this.trace = this.method('trace');
  }

  private method(level: Emitting): LogFn {
    if (RANK[level] < RANK[this.level]) return () => {};
    return (fieldsOrMsg: object | string, msg?: string) => {
      const head = { level, time: new Date().toISOString() };
      const fields =
        typeof fieldsOrMsg === 'string'
          ? { msg: fieldsOrMsg }
          : fieldsOrMsg instanceof Error
            ? { err: fieldsOrMsg, msg: msg ?? fieldsOrMsg.message }
            : msg === undefined
              ? fieldsOrMsg
              : { ...fieldsOrMsg, msg };
      this.write(stringify({ ...head, ...this.bindings, ...fields }) + '\n');
    };
  }

  child(bindings: Record<string, unknown>): Logger {
    return new LineLogger(this.level, { ...this.bindings, ...bindings }, this.write);
  }

  isLevelEnabled(level: LogLevel): boolean {
    return level !== 'silent' && RANK[level] >= RANK[this.level];
  }
}

/** Fields every line has; the text format shows them in front, the rest as key=value. */
const HEAD = new Set(['level', 'time', 'component', 'msg', 'pid', 'hostname']);

/** A field's value in the text format; a serialized error shows its message and code, not its stack. */
function textValue(v: unknown): string {
  if (typeof v === 'string') return /\s|"/.test(v) ? JSON.stringify(v) : v;
  const err = v as { type?: unknown; message?: unknown; code?: unknown } | null;
  if (
    err !== null &&
    typeof err === 'object' &&
    typeof err.type === 'string' &&
    typeof err.message === 'string'
  ) {
    return JSON.stringify(err.code === undefined ? err.message : `${err.message} (${String(err.code)})`);
  }
  return JSON.stringify(v);
}

/** One JSON log line -> "TIME LEVEL component: msg key=value ...". */
export function textLine(json: string): string {
  const o = JSON.parse(json) as Record<string, unknown>;
  const rest = Object.entries(o)
    .filter(([k]) => !HEAD.has(k))
    .map(([k, v]) => `${k}=${textValue(v)}`);
  const head = `${o.time} ${String(o.level).toUpperCase().padEnd(5)} ${o.component ?? ''}: ${o.msg ?? ''}`;
  return [head, ...rest].join(' ') + '\n';
}

export function createLogger(component: string, settings: LogSettings | string = {}): Logger {
  const s = typeof settings === 'string' ? { level: settings } : settings;
  const level = levelOf(s.level ?? process.env.SNOWTAP_LOG_LEVEL ?? 'info');
  const write = s.format === 'text' ? (line: string) => writeStderr(textLine(line)) : writeStderr;
  return new LineLogger(level, { component }, write);
}

/** A logger that hands each JSON line (newline-terminated) to `write` (tests, embedding). */
export function loggerTo(write: (line: string) => void, level: LogLevel = 'debug', bindings = {}): Logger {
  return new LineLogger(level, bindings, write);
}

/** A logger that discards everything (tests, library use). */
export function silentLogger(): Logger {
  return new LineLogger('silent', {}, () => {});
}
