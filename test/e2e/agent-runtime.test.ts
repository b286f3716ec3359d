// `snowtap agent --runtime lean|full` (cli/agent-runtime.ts), on the running Node: where
// process.execve exists (Node >= 22.15, CI's Node 24) the lean agent is the same PID re-executed
// with the lean node flags and one malloc arena, and works; --runtime full leaves Node's
// defaults. On Node 20 the lean agent runs on unchanged and its log says why.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';

const MAIN = path.resolve(__dirname, '../../cli/main.js');
const dir = mkdtempSync(path.join(tmpdir(), 'snowtap-runtime-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const HAS_EXECVE = typeof (process as unknown as { execve?: unknown }).execve === 'function';

interface Seen {
  pid: number;
  cmdline: string[];
  environ: string[];
  healthz: number;
  log: string;
  code: number | null;
}

/** Starts an agent (dnstap socket, enricher unreachable), reads its /proc entries once it listens, stops it. */
async function agentWith(args: string[]): Promise<Seen> {
  const sock = path.join(dir, `agent-${Date.now()}.sock`);
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('SNOWTAP_') && k !== 'MALLOC_ARENA_MAX'),
  );
  const child = spawn(
    process.execPath,
    [
      MAIN,
      'agent',
      '--dnstap-socket',
      sock,
      '--enricher',
      '127.0.0.1:1',
      '--metrics-listen',
      '127.0.0.1:0',
      ...args,
    ],
    { env: { ...env, SNOWTAP_LOG_LEVEL: 'info' }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  child.stderr!.on('data', (d) => (log += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  try {
    for (let i = 0; !existsSync(sock) || !log.includes('"ops endpoint listening"'); i++) {
      if (i > 300) throw new Error(`agent did not start: ${log}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const metrics = /"metrics":"127\.0\.0\.1:(\d+)"/.exec(log);
    assert.ok(metrics, `metrics address in the log: ${log}`);
    const healthz = (await fetch(`http://127.0.0.1:${metrics[1]}/healthz`)).status;
    const pid = child.pid!;
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean);
    child.kill('SIGTERM');
    return { pid, cmdline, environ, healthz, log, code: await exited };
  } finally {
    child.kill('SIGKILL');
  }
}

test('--runtime lean (the default): the same process, re-executed with the lean flags where Node has execve', async () => {
  const seen = await agentWith([]);
  assert.equal(seen.healthz, 200);
  assert.equal(seen.code, 0, seen.log);
  if (HAS_EXECVE) {
    assert.deepEqual(seen.cmdline.slice(0, 4), [process.execPath, '--max-opt=2', '--v8-pool-size=1', MAIN]);
    assert.ok(seen.environ.includes('MALLOC_ARENA_MAX=1'), 'one malloc arena');
    assert.ok(seen.environ.includes('SNOWTAP_RUNTIME_APPLIED=lean'));
    assert.doesNotMatch(seen.log, /needs process\.execve/);
  } else {
    assert.deepEqual(seen.cmdline.slice(0, 2), [process.execPath, MAIN]);
    assert.match(
      seen.log,
      /--runtime lean needs process\.execve \(Node\.js >= 22\.15\); running with Node's defaults/,
    );
  }
});

test('--runtime full: Node as started, no re-execution', async () => {
  const seen = await agentWith(['--runtime', 'full']);
  assert.equal(seen.healthz, 200);
  assert.deepEqual(seen.cmdline.slice(0, 2), [process.execPath, MAIN]);
  assert.ok(
    !seen.environ.some((e) => e.startsWith('MALLOC_ARENA_MAX=') || e.startsWith('SNOWTAP_RUNTIME_APPLIED=')),
  );
  assert.equal(seen.code, 0, seen.log);
});

test('--runtime with an unknown value: a usage error naming the option, before anything starts', async () => {
  const child = spawn(
    process.execPath,
    [MAIN, 'agent', '--runtime', 'fast', '--dnstap-socket', path.join(dir, 'x.sock')],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const code = await new Promise((r) => child.once('exit', r));
  assert.equal(code, 2);
  assert.match(err, /--runtime/);
  assert.match(err, /lean/);
});
