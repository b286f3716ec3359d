// Logs on stderr (pino), one line per event, never one per record. JSON lines by default,
// with ISO-8601 times and level names ({"level":"info","time":"2026-...Z",...}); `text` is
// one human-readable line per event for a terminal.
import { writeSync } from 'node:fs';
import pino from 'pino';

export type Logger = pino.Logger;

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ['json', 'text'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export interface LogSettings {
  /** Default: $SNOWTAP_LOG_LEVEL, else info. */
  level?: string;
  /** Default: json. */
  format?: LogFormat;
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

/** One JSON line from pino -> "TIME LEVEL component: msg key=value ...". */
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
  const level = s.level ?? process.env.SNOWTAP_LOG_LEVEL ?? 'info';
  const options: pino.LoggerOptions = {
    level,
    base: { component },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
  // Synchronous writes so the last lines before an exit (or a crash) are never lost.
  if (s.format === 'text') return pino(options, { write: (line: string) => writeSync(2, textLine(line)) });
  return pino(options, pino.destination({ dest: 2, sync: true }));
}

/** A logger that discards everything (tests, library use). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
