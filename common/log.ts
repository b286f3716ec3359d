// JSON-lines logging on stderr (pino): one line per event, never one per record.
import pino from 'pino';

export type Logger = pino.Logger;

export function createLogger(
  component: string,
  level: string = process.env.SNOWTAP_LOG_LEVEL ?? 'info',
): Logger {
  // Synchronous writes so the last lines before an exit (or a crash) are never lost.
  return pino({ level, base: { component } }, pino.destination({ dest: 2, sync: true }));
}

/** A logger that discards everything (tests, library use). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
