// Configuration stated once: the CLI's defaults and ranges are the libraries' (issue 12,
// step 3). A flag and the library field it sets must agree on default and range, and
// --max-frame-size has one range on every command.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { AGENT_DEFAULTS, AGENT_LIMITS, type AgentError, resolveAgentOptions } from '../../agent';
import { AGENT_OPTIONS } from '../../cli/agent';
import { ENRICHER_OPTIONS } from '../../cli/enricher';
import type { OptionSpec } from '../../cli/options';
import { CONVERT_OPTIONS } from '../../cli/specs';
import { silentLogger } from '../../common/log';
import { DEFAULT_DRAIN_TIMEOUT_MS } from '../../enricher/enricher';
import { CHUNK_DEFAULTS } from '../../enricher/output/index';
import { POLICY_POLL_DEFAULTS } from '../../enricher/policy/poller';
import { LINK_SERVER_DEFAULTS } from '../../enricher/server/index';
import { DEFAULT_MAX_DATA_FRAME_SIZE } from '../../proto/framestream';
import { MAX_FRAME_SIZE_RANGE } from '../../proto/link';

const MAIN = path.resolve(__dirname, '../../cli/main.js');

function spec(table: readonly OptionSpec[], name: string): OptionSpec {
  const s = table.find((x) => x.name === name);
  assert.ok(s, `option --${name}`);
  return s;
}

test('agent flags take default and range from AGENT_DEFAULTS / AGENT_LIMITS (ms fields as seconds)', () => {
  const pairs: [string, keyof typeof AGENT_LIMITS, number][] = [
    ['switch-interval', 'switchIntervalMs', 1000],
    ['buffer-bytes', 'bufferBytes', 1],
    ['spool-max-bytes', 'spoolMaxBytes', 1],
    ['rate-limit', 'rateLimit', 1],
    ['sample', 'sample', 1],
    ['batch-records', 'batchRecords', 1],
    ['batch-bytes', 'batchBytes', 1],
    ['batch-linger-ms', 'batchLingerMs', 1],
    ['max-in-flight', 'maxInFlight', 1],
    ['max-frame-size', 'maxFrameSize', 1],
    ['drain-timeout', 'drainTimeoutMs', 1000],
    ['handshake-timeout', 'handshakeTimeoutMs', 1000],
    ['input-timeout', 'inputTimeoutMs', 1000],
  ];
  for (const [flag, field, scale] of pairs) {
    const s = spec(AGENT_OPTIONS, flag);
    assert.equal(Number(s.default) * scale, AGENT_DEFAULTS[field], `--${flag} default`);
    assert.equal(s.min! * scale, AGENT_LIMITS[field].min, `--${flag} min`);
    assert.equal(s.max! * scale, AGENT_LIMITS[field].max, `--${flag} max`);
  }
  assert.equal(spec(AGENT_OPTIONS, 'when-full').default, AGENT_DEFAULTS.whenFull);
  assert.equal(spec(AGENT_OPTIONS, 'sample-mode').default, AGENT_DEFAULTS.sampleMode);
});

test('enricher flags take their defaults from the link server, policy poller, chunk writer and enricher', () => {
  const e = (name: string) => Number(spec(ENRICHER_OPTIONS, name).default);
  assert.equal(e('max-connections'), LINK_SERVER_DEFAULTS.maxConnections);
  assert.equal(e('handshake-timeout') * 1000, LINK_SERVER_DEFAULTS.handshakeTimeoutMs);
  assert.equal(e('keepalive-interval') * 1000, LINK_SERVER_DEFAULTS.keepaliveIntervalMs);
  assert.equal(e('max-in-flight-batches'), LINK_SERVER_DEFAULTS.maxInFlightBatches);
  assert.equal(e('policy-interval') * 1000, POLICY_POLL_DEFAULTS.intervalMs);
  assert.equal(e('policy-timeout') * 1000, POLICY_POLL_DEFAULTS.timeoutMs);
  assert.equal(e('policy-max-bytes'), POLICY_POLL_DEFAULTS.maxBodyBytes);
  assert.equal(e('drain-timeout') * 1000, DEFAULT_DRAIN_TIMEOUT_MS);
  assert.equal(e('rotate-max-rows'), CHUNK_DEFAULTS.maxRows);
  assert.equal(e('rotate-max-bytes'), CHUNK_DEFAULTS.maxBytes);
  assert.equal(e('rotate-max-age') * 1000, CHUNK_DEFAULTS.maxAgeMs);
});

test('--max-frame-size has one default and one range on agent, enricher and convert', () => {
  for (const [command, table] of [
    ['agent', AGENT_OPTIONS],
    ['enricher', ENRICHER_OPTIONS],
    ['convert', CONVERT_OPTIONS],
  ] as const) {
    const s = spec(table, 'max-frame-size');
    assert.deepEqual(
      { default: s.default, min: s.min, max: s.max },
      { default: DEFAULT_MAX_DATA_FRAME_SIZE, ...MAX_FRAME_SIZE_RANGE },
      command,
    );
  }
  const base = {
    id: 'a',
    inputFile: '/x',
    enrichers: [{ host: '127.0.0.1', port: 1 }],
    log: silentLogger(),
  };
  assert.equal(
    resolveAgentOptions({ ...base, maxFrameSize: MAX_FRAME_SIZE_RANGE.max }).maxFrameSize,
    MAX_FRAME_SIZE_RANGE.max,
  );
  assert.throws(
    () => resolveAgentOptions({ ...base, maxFrameSize: MAX_FRAME_SIZE_RANGE.max + 1 }),
    (err: AgentError) => err.code === 'AGENT_INVALID_OPTION' && /maxFrameSize/.test(err.message),
  );
});

test('agent: a library validation error names the flags (exit 2)', async () => {
  const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        MAIN,
        'agent',
        '--dnstap-socket',
        '/tmp/x.sock',
        '--enricher',
        '127.0.0.1:1',
        '--buffer-bytes',
        '2048',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let err = '';
    child.stderr!.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (c) => resolve({ code: c, stderr: err }));
  });
  assert.equal(code, 2, stderr);
  assert.match(stderr, /--buffer-bytes \(2048\) must be at least --batch-bytes \(1048576\)/);
});
