// `snowtap enricher` configuration errors through the real executable: exit 2 with a message
// naming the problem, before anything is bound or written.

import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { tmpDir } from '../support/enricher-helpers';
import { NODE_HAS_ZSTD } from '../support/zstd';

const run = promisify(execFile);
const MAIN = path.resolve(__dirname, '../../cli/main.js');

async function snowtap(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [MAIN, 'enricher', ...args], { timeout: 20_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

test('--help lists the contract options', async () => {
  const r = await snowtap(['--help']);
  assert.equal(r.code, 0);
  for (const o of [
    '--listen',
    '--dnstap-listen',
    '--policy-url',
    '--policy-interval',
    '--metrics-listen',
    '--max-connections',
    '--auth-token-file',
    '--tls-ca',
    '--drain-timeout',
  ]) {
    assert.ok(r.stdout.includes(o), o);
  }
});

test('configuration errors exit 2 naming the problem', async (t) => {
  const dir = tmpDir(t);
  const empty = path.join(dir, 'empty-token');
  fs.writeFileSync(empty, '\n');
  const badPolicy = path.join(dir, 'policy.json');
  fs.writeFileSync(badPolicy, '{"version": ""}');
  const base = [
    '--output-dir',
    path.join(dir, 'out'),
    '--listen',
    '127.0.0.1:0',
    '--metrics-listen',
    '127.0.0.1:0',
  ];
  const cases: [string[], RegExp][] = [
    [['--tls-cert', empty], /--tls-cert and --tls-key go together/],
    [['--tls-ca', empty], /--tls-ca needs --tls-cert/],
    [['--tls-cert', empty, '--tls-key', empty], /--tls-cert\/--tls-key/],
    [['--auth-token-file', path.join(dir, 'nope')], /--auth-token-file .*cannot read \(ENOENT\)/],
    [['--auth-token-file', empty], /--auth-token-file .*empty/],
    [['--policy-url', 'http://x/p', '--policy-file', badPolicy], /exclusive/],
    [['--policy-url', 'ftp://x/p'], /--policy-url 'ftp:\/\/x\/p'/],
    [['--policy-file', badPolicy], /policy .*version/],
    [['--id', 'a/b'], /--id 'a\/b'/],
    [['--keepalive-interval', '0.5'], /--keepalive-interval/],
    [['--max-connections', '0'], /--max-connections: must be at least 1/],
    [['--listen', 'nope'], /--listen: expected HOST:PORT/],
    [['--bogus'], /unknown option '--bogus'/],
    [['--dnstap-allow', '10.0.0.0/40'], /--dnstap-allow: '10.0.0.0\/40'/],
    [['--dnstap-tls-ca', empty], /--dnstap-tls-ca needs --dnstap-tls-cert/],
    [['--dnstap-max-connections', '0'], /--dnstap-max-connections: must be at least 1/],
  ];
  for (const [args, message] of cases) {
    const r = await snowtap([...base, ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(' '));
  }
});

test('--compression zstd: starts and drains cleanly on SIGTERM on a Node with zstd; exits 2 at start naming the option and the version on one without', async (t) => {
  const dir = tmpDir(t);
  const out = path.join(dir, 'out');
  const args = ['--output-dir', out, '--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0'];
  if (!NODE_HAS_ZSTD) {
    const r = await snowtap([...args, '--compression', 'zstd']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      /^snowtap enricher: --compression zstd needs Node\.js >= 22\.15 .*this is Node\.js 2/,
    );
    assert.equal(fs.existsSync(out), false, 'nothing created');
    return;
  }
  const child = spawn(process.execPath, [MAIN, 'enricher', ...args, '--compression', 'zstd', '--id', 'z-1'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  t.after(() => child.kill('SIGKILL'));
  let log = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr.on('data', (b: Buffer) => {
      log += b.toString();
      if (log.includes('enricher ready')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`exited ${code}: ${log}`)));
  });
  child.removeAllListeners('exit');
  const exit = new Promise<number | null>((resolve) => child.on('exit', resolve));
  child.kill('SIGTERM');
  assert.equal(await exit, 0, log);
  assert.match(log, /"compression":"zstd"/);
});

test('--gzip and --compression that contradict each other exit 2', async (t) => {
  const dir = tmpDir(t);
  const r = await snowtap(['--output-dir', path.join(dir, 'out'), '--gzip', '--compression', 'zstd']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--gzip \(true\) contradicts --compression zstd/);
});
