// common/log.ts: the project's own line logger (pino's JSON layout, level names).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLogger, loggerTo, silentLogger, textLine } from '../../common/log';

function capture(level: Parameters<typeof loggerTo>[1] = 'debug', bindings = {}) {
  const raw: string[] = [];
  const log = loggerTo((s) => void raw.push(s), level, bindings);
  return { log, raw, lines: () => raw.map((s) => JSON.parse(s) as Record<string, unknown>) };
}

test('a line: level name, ISO time, the bindings, the fields, msg last; one JSON object per line', () => {
  const { log, raw, lines } = capture('info', { component: 'agent' });
  log.child({ link: 'l1' }).info({ port: 9401, big: 2n ** 40n }, 'ops endpoint listening');
  log.warn('plain message');
  assert.equal(raw.length, 2);
  assert.ok(raw.every((s) => s.endsWith('\n') && !s.slice(0, -1).includes('\n')));
  const [a, b] = lines();
  assert.deepEqual(Object.keys(a!), ['level', 'time', 'component', 'link', 'port', 'big', 'msg']);
  assert.equal(a!.level, 'info');
  assert.match(String(a!.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.equal(a!.big, 2 ** 40);
  assert.deepEqual(b, { level: 'warn', time: b!.time, component: 'agent', msg: 'plain message' });
});

test('the threshold: lines below it are not written; silent writes nothing; an unknown level is an error', () => {
  const { log, lines } = capture('warn');
  log.trace('t');
  log.debug('d');
  log.info('i');
  log.warn('w');
  log.error('e');
  log.fatal('f');
  assert.deepEqual(
    lines().map((l) => l.level),
    ['warn', 'error', 'fatal'],
  );
  assert.equal(log.isLevelEnabled('info'), false);
  assert.equal(log.isLevelEnabled('error'), true);
  const quiet = silentLogger();
  quiet.fatal('nothing');
  assert.equal(quiet.isLevelEnabled('fatal'), false);
  assert.throws(
    () => createLogger('x', 'loud'),
    /unknown log level "loud" \(expected one of fatal\|error\|warn/,
  );
});

test('errors: class, message, stack, own fields and cause, under any key; cycles do not throw', () => {
  const { log, lines } = capture();
  const cause = new RangeError('inner');
  const err = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1', { cause }), {
    code: 'ECONNREFUSED',
    errno: -111,
  });
  log.warn({ err }, 'link connection failed');
  log.error(new TypeError('bad'), undefined);
  const loop: Record<string, unknown> = { name: 'loop' };
  loop.self = loop;
  log.info({ loop }, 'cyclic');
  const [a, b, c] = lines();
  const e = a!.err as Record<string, unknown>;
  assert.equal(e.type, 'Error');
  assert.equal(e.message, 'connect ECONNREFUSED 127.0.0.1:1');
  assert.equal(e.code, 'ECONNREFUSED');
  assert.equal(e.errno, -111);
  assert.match(String(e.stack), /^Error: connect ECONNREFUSED/);
  assert.deepEqual((e.cause as Record<string, unknown>).type, 'RangeError');
  assert.equal((b!.err as Record<string, unknown>).type, 'TypeError');
  assert.equal(b!.msg, 'bad');
  assert.deepEqual(c!.loop, { name: 'loop', self: '[Circular]' });
});

test('text format: "TIME LEVEL component: msg key=value", an error as its message and code', () => {
  const { log, raw } = capture('info', { component: 'enricher' });
  log.error({ err: Object.assign(new Error('disk full'), { code: 'ENOSPC' }), chunk: 'a b' }, 'write failed');
  const line = textLine(raw[0]!);
  assert.match(
    line,
    /^\d{4}-\d\d-\d\dT\S+Z ERROR enricher: write failed err="disk full \(ENOSPC\)" chunk="a b"\n$/,
  );
});
