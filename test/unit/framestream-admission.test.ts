// The pure parts of the exposed-input admission (issue 10): the allow-list parser, the
// rate-limited refusal log, the octal socket mode and the CLI's --dnstap-* validation.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dnstapInputFrom, parseSocketMode } from '../../cli/dnstap-input';
import { UsageError } from '../../cli/options';
import {
  allowed,
  parseAllowList,
  REFUSAL_LOG_MAX_SOURCES,
  REFUSAL_LOG_WINDOW_MS,
  RefusalLog,
} from '../../common/framestream-admission';

test('allow-list: CIDRs and bare addresses of both families', () => {
  const list = parseAllowList(['10.0.0.0/8', '192.0.2.7', 'fd00::/8', '::1']);
  assert.equal(allowed(list, '10.1.2.3'), true);
  assert.equal(allowed(list, '192.0.2.7'), true);
  assert.equal(allowed(list, '192.0.2.8'), false);
  assert.equal(allowed(list, 'fd12::1'), true);
  assert.equal(allowed(list, '::1'), true);
  assert.equal(allowed(list, '127.0.0.1'), false);
  assert.equal(allowed(list, undefined), false);
});

test('allow-list: an IPv4 entry matches the IPv4-mapped address of a dual-stack listener', () => {
  const list = parseAllowList(['127.0.0.0/8']);
  assert.equal(allowed(list, '::ffff:127.0.0.1'), true);
  assert.equal(allowed(list, '::ffff:10.0.0.1'), false);
});

test('allow-list: a bad entry is an error naming it', () => {
  assert.throws(() => parseAllowList(['10.0.0.0/33']), /'10.0.0.0\/33': prefix length must be 0..32/);
  assert.throws(() => parseAllowList(['example.com']), /'example.com' is not an IP address or CIDR/);
  assert.throws(() => parseAllowList(['10.0.0.0/']), /prefix length/);
});

test('refusal log: one line per source and reason per window, with the count it hid', () => {
  let now = 0;
  const lines: Record<string, unknown>[] = [];
  const log = new RefusalLog(
    (f) => lines.push(f),
    () => now,
  );
  for (let i = 0; i < 1000; i++) log.refused('10.0.0.1', 'not-allowed', {});
  log.refused('10.0.0.2', 'not-allowed', {});
  log.refused('10.0.0.1', 'max-connections', {});
  assert.equal(lines.length, 3);
  now += REFUSAL_LOG_WINDOW_MS;
  log.refused('10.0.0.1', 'not-allowed', {});
  assert.equal(lines.length, 4);
  assert.equal(lines[3]!.suppressedSinceLastLog, 999);
});

test('refusal log: its table of sources is bounded', () => {
  const lines: unknown[] = [];
  const log = new RefusalLog(
    (f) => lines.push(f),
    () => 0,
  );
  for (let i = 0; i < REFUSAL_LOG_MAX_SOURCES * 3; i++) log.refused(`src-${i}`, 'not-allowed', {});
  // Every new source is logged; memory stays at most REFUSAL_LOG_MAX_SOURCES entries.
  assert.equal(lines.length, REFUSAL_LOG_MAX_SOURCES * 3);
  assert.ok((log as unknown as { seen: Map<string, unknown> }).seen.size <= REFUSAL_LOG_MAX_SOURCES);
});

test('--dnstap-socket-mode: octal with or without a leading 0 or 0o', () => {
  assert.equal(parseSocketMode('0660'), 0o660);
  assert.equal(parseSocketMode('660'), 0o660);
  assert.equal(parseSocketMode('0o600'), 0o600);
  assert.throws(() => parseSocketMode('0990'), UsageError);
  assert.throws(() => parseSocketMode('rw-rw----'), /--dnstap-socket-mode: expected an octal mode/);
});

test('--dnstap-* options: CA without certificate, half a key pair and bad CIDRs are usage errors naming the flag', () => {
  const base = {
    'dnstap-max-connections': 64,
    'dnstap-max-handshaking': 16384,
    'dnstap-handshake-timeout': 10,
  };
  assert.throws(
    () => dnstapInputFrom({ ...base, 'dnstap-allow': ['300.0.0.0/8'] }),
    /--dnstap-allow: '300.0.0.0\/8'/,
  );
  assert.throws(() => dnstapInputFrom({ ...base, 'dnstap-allow': [] }), /--dnstap-allow: give at least one/);
  assert.throws(
    () => dnstapInputFrom({ ...base, 'dnstap-tls-cert': '/nonexistent.pem' }),
    /--dnstap-tls-cert/,
  );
  const t = dnstapInputFrom({ ...base, 'dnstap-allow': ['127.0.0.1/32'], 'dnstap-handshake-timeout': 2.5 });
  assert.deepEqual(t, {
    tls: null,
    allow: ['127.0.0.1/32'],
    maxConnections: 64,
    maxHandshaking: 16384,
    handshakeTimeoutMs: 2500,
  });
});
