// --active-connections N|auto is resolved like every option (flag > SNOWTAP_ACTIVE_CONNECTIONS >
// config key > default 1) and validated against --max-active-connections with a usage error
// naming the flag. Pure: parseCommand is given its environment.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { AGENT_OPTIONS, agentOptionsFrom } from '../../cli/agent';
import { parseCommand, type UsageError } from '../../cli/options';

const BASE = ['--dnstap-socket', '/tmp/x.sock', '--enricher', '127.0.0.1:7400'];
const dir = mkdtempSync(path.join(tmpdir(), 'cli-stripes-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const resolve = (argv: string[], env: NodeJS.ProcessEnv = {}) =>
  agentOptionsFrom(parseCommand([...BASE, ...argv], AGENT_OPTIONS, env).options).activeConnections;

test('--active-connections: default 1 (one active connection, as before striping)', () => {
  assert.equal(resolve([]), 1);
});

test('--active-connections: a number, auto, the env variable, and the config key', () => {
  assert.equal(resolve(['--active-connections', '3']), 3);
  assert.equal(resolve(['--active-connections', 'auto']), 'auto');
  assert.equal(resolve([], { SNOWTAP_ACTIVE_CONNECTIONS: 'auto' }), 'auto');
  assert.equal(
    resolve(['--active-connections', '2'], { SNOWTAP_ACTIVE_CONNECTIONS: 'auto' }),
    2,
    'flag wins',
  );
  const config = path.join(dir, 'agent.yaml');
  writeFileSync(config, 'active-connections: 4\nmax-active-connections: 4\n');
  assert.equal(resolve(['--config', config]), 4);
});

test('--active-connections above --max-active-connections, zero or a word: usage error naming the flag', () => {
  for (const bad of [
    ['--active-connections', '9'],
    ['--active-connections', '0'],
    ['--active-connections', 'many'],
  ]) {
    assert.throws(
      () => resolve(bad),
      (e: UsageError) => e.code === 'SNOWTAP_USAGE' && /--active-connections/.test(e.message),
      bad.join(' '),
    );
  }
  assert.equal(resolve(['--active-connections', '12', '--max-active-connections', '16']), 12);
});
