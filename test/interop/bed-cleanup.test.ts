// The test bed never leaves anything behind, even when its harness dies: a child harness creates
// a namespace (with an address and a process inside) and a CPU-limited cgroup (with a process),
// then crashes with an uncaught exception, or is interrupted with SIGINT. Afterwards the
// namespace, the cgroup and the processes must all be gone. Needs root and iproute2.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { test } from 'node:test';
import { listSnowtapNamespaces } from '../../loadtest/netns';
import { needBed } from '../support/bed';

const CHILD = path.resolve(__dirname, '../support/bed-crash-child.js');

interface Made {
  netns: string;
  cgroup: string;
  pid: number;
  inPod: number[];
}

/** Running (not gone, not a zombie waiting for whoever adopted it to reap it). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

async function crash(
  how: 'throw' | 'sigint',
): Promise<{ made: Made; code: number | null; signal: string | null }> {
  const child = spawn(process.execPath, [CHILD, how], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<[number | null, string | null]>((r) => child.once('exit', (c, s) => r([c, s])));
  const lines = readline.createInterface({ input: child.stdout });
  const first = await new Promise<string>((resolve, reject) => {
    lines.once('line', resolve);
    child.once('exit', () => reject(new Error(`child exited before reporting: ${stderr}`)));
  });
  const made = JSON.parse(first) as Made;
  // While the harness lives, everything exists.
  assert.ok(existsSync(`/run/netns/${made.netns}`));
  assert.ok(existsSync(made.cgroup));
  assert.ok(made.inPod.includes(made.pid), 'the process is inside the CPU-limited cgroup');
  if (how === 'sigint') child.kill('SIGINT');
  const [code, signal] = await exited;
  return { made, code, signal };
}

for (const how of ['throw', 'sigint'] as const) {
  test(`a harness that ${how === 'throw' ? 'throws an uncaught exception' : 'gets SIGINT'} leaves no namespace, cgroup or process`, async (t) => {
    if (!needBed(t, [], true)) return;
    const { made, code, signal } = await crash(how);
    if (how === 'throw') assert.equal(code, 1);
    else assert.equal(signal, 'SIGINT', 'dies of the signal, as without the hook');
    assert.equal(existsSync(`/run/netns/${made.netns}`), false, 'namespace removed');
    assert.ok(!(await listSnowtapNamespaces()).includes(made.netns));
    assert.equal(existsSync(made.cgroup), false, 'cgroup removed');
    // SIGKILLed by PID at exit; give the kernel a moment to deliver it.
    for (let i = 0; i < 50 && alive(made.pid); i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(alive(made.pid), false, `pid ${made.pid} stopped`);
  });
}
