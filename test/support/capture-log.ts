// A logger whose lines are kept as parsed objects (level names: "debug" ... "fatal").
import { type Logger, loggerTo } from '../../common/log';

export type LogLine = Record<string, unknown> & { msg: string; level: string };

export function captureLog(): { log: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const log = loggerTo((s) => void lines.push(JSON.parse(s)), 'debug');
  return { log, lines };
}
