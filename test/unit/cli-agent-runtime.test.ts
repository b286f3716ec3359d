// `snowtap agent --runtime lean|full` (cli/agent-runtime.ts): the plan is pure, so every case
// is checked here; test/e2e/agent-runtime.test.ts checks the re-executed process itself.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { planRuntime, RUNTIME_APPLIED_ENV } from '../../cli/agent-runtime';

const facts = (over: Partial<Parameters<typeof planRuntime>[1]> = {}) => ({
  execPath: '/opt/node/bin/node',
  execArgv: [] as string[],
  argv: ['/opt/node/bin/node', '/app/dist/cli/main.js', 'agent', '--id', 'a1'],
  env: { PATH: '/usr/bin', UNSET: undefined } as Record<string, string | undefined>,
  hasExecve: true,
  version: 'v20.20.2',
  ...over,
});

test('lean: one execve of the same node and script with the lean flags first and one malloc arena', () => {
  const plan = planRuntime('lean', facts({ execArgv: ['--enable-source-maps'] }));
  assert.ok(plan.exec);
  assert.equal(plan.file, '/opt/node/bin/node');
  assert.deepEqual(plan.args, [
    '/opt/node/bin/node',
    '--max-opt=2',
    '--v8-pool-size=1',
    '--enable-source-maps',
    '/app/dist/cli/main.js',
    'agent',
    '--id',
    'a1',
  ]);
  assert.deepEqual(plan.env, { PATH: '/usr/bin', MALLOC_ARENA_MAX: '1', [RUNTIME_APPLIED_ENV]: 'lean' });
});

test("lean: the user's own node flags and MALLOC_ARENA_MAX win", () => {
  const plan = planRuntime(
    'lean',
    facts({ execArgv: ['--max_opt=3', '--v8-pool-size', '2'], env: { MALLOC_ARENA_MAX: '4' } }),
  );
  assert.ok(plan.exec);
  assert.deepEqual(plan.args.slice(0, 5), [
    '/opt/node/bin/node',
    '--max_opt=3',
    '--v8-pool-size',
    '2',
    '/app/dist/cli/main.js',
  ]);
  assert.equal(plan.env.MALLOC_ARENA_MAX, '4');
  const jitless = planRuntime('lean', facts({ execArgv: ['--jitless'] }));
  assert.ok(jitless.exec && !jitless.args.includes('--max-opt=2'));
});

test('lean is applied once: the re-executed process (marked in its environment) does not execve again', () => {
  assert.deepEqual(planRuntime('lean', facts({ env: { [RUNTIME_APPLIED_ENV]: 'lean' } })), {
    exec: false,
    runtime: 'lean',
    note: null,
  });
});

test('full, and lean without process.execve (Node 20): nothing happens; the missing execve is named', () => {
  assert.deepEqual(planRuntime('full', facts()), { exec: false, runtime: 'full', note: null });
  const plan = planRuntime('lean', facts({ hasExecve: false }));
  assert.equal(plan.exec, false);
  assert.ok(!plan.exec && plan.runtime === 'full');
  assert.match(
    String(!plan.exec && plan.note),
    /--runtime lean needs process\.execve \(Node\.js >= 22\.15\)/,
  );
});
