// cpu-pod.ts without a kernel: cgroup v1/v2 detection and the files a CPU limit is written to,
// on fake /sys/fs/cgroup trees in a temp dir (this machine runs cgroup v1, so the v2 branch is
// only exercised here; the real enforcement is test/interop/cpu-pod.test.ts).

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { BedError } from '../../loadtest/bed-errors';
import { CpuPod, detectCgroupVersion } from '../../loadtest/cpu-pod';

const base = mkdtempSync(path.join(tmpdir(), 'snowtap-fake-cgroup-'));
after(() => rmSync(base, { recursive: true, force: true }));

function fakeRoot(kind: 'v1' | 'v2' | 'v2-no-cpu' | 'none'): string {
  const root = mkdtempSync(path.join(base, `${kind}-`));
  if (kind === 'v1') {
    mkdirSync(path.join(root, 'cpu'));
    writeFileSync(path.join(root, 'cpu', 'cpu.cfs_quota_us'), '-1\n');
  } else if (kind.startsWith('v2')) {
    writeFileSync(path.join(root, 'cgroup.controllers'), 'cpuset cpu io memory pids\n');
    writeFileSync(
      path.join(root, 'cgroup.subtree_control'),
      kind === 'v2' ? 'cpu memory pids\n' : 'memory pids\n',
    );
  }
  return root;
}

test('detects v2 by a unified root, v1 by a cpu controller mount, neither otherwise', () => {
  assert.equal(detectCgroupVersion(fakeRoot('v2')), 2);
  assert.equal(detectCgroupVersion(fakeRoot('v1')), 1);
  assert.equal(detectCgroupVersion(fakeRoot('none')), null);
});

test('v1: cpu.cfs_period_us = 100000 and cpu.cfs_quota_us = limit x 100000 in cpu/<name>', () => {
  const root = fakeRoot('v1');
  const pod = CpuPod.create(0.3, 'unit', root);
  assert.equal(pod.version, 1);
  assert.equal(path.dirname(pod.dir), path.join(root, 'cpu'));
  assert.equal(readFileSync(path.join(pod.dir, 'cpu.cfs_period_us'), 'utf8'), '100000');
  assert.equal(readFileSync(path.join(pod.dir, 'cpu.cfs_quota_us'), 'utf8'), '30000');
  assert.deepEqual(pod.limits(), { quotaUs: 30_000, periodUs: 100_000 });
  // A real cgroupfs directory is removable with its control files in it; a fake one is not.
  for (const f of ['cpu.cfs_period_us', 'cpu.cfs_quota_us']) unlinkSync(path.join(pod.dir, f));
  pod.remove();
  pod.remove();
  assert.equal(pod.exists(), false);
});

test('v2: cpu.max = "QUOTA 100000" in <root>/<name>; refused when the cpu controller is not delegated', () => {
  const root = fakeRoot('v2');
  const pod = CpuPod.create(1.5, 'unit', root);
  assert.equal(pod.version, 2);
  assert.equal(path.dirname(pod.dir), root);
  assert.equal(readFileSync(path.join(pod.dir, 'cpu.max'), 'utf8'), '150000 100000');
  assert.deepEqual(pod.limits(), { quotaUs: 150_000, periodUs: 100_000 });
  unlinkSync(path.join(pod.dir, 'cpu.max'));
  pod.remove();
  assert.equal(pod.exists(), false);
  assert.throws(
    () => CpuPod.create(1, 'unit', fakeRoot('v2-no-cpu')),
    (e: unknown) =>
      e instanceof BedError && e.code === 'BED_UNSUPPORTED' && /subtree_control/.test(e.message),
  );
  assert.throws(
    () => CpuPod.create(1, 'unit', fakeRoot('none')),
    (e: unknown) => e instanceof BedError && e.code === 'BED_UNSUPPORTED',
  );
});

test('wrapArgv enters the cgroup in a shell that then execs the command (same PID)', () => {
  const root = fakeRoot('v1');
  const pod = CpuPod.create(0.2, 'unit', root);
  const argv = pod.wrapArgv(['ip', 'netns', 'exec', 'ns', 'node', 'x.js']);
  assert.deepEqual(argv, [
    '/bin/sh',
    '-c',
    'echo $$ > "$0" && exec "$@"',
    path.join(pod.dir, 'cgroup.procs'),
    'ip',
    'netns',
    'exec',
    'ns',
    'node',
    'x.js',
  ]);
  for (const f of ['cpu.cfs_period_us', 'cpu.cfs_quota_us']) unlinkSync(path.join(pod.dir, f));
  pod.remove();
  assert.throws(
    () => pod.wrapArgv(['true']),
    (e: unknown) => e instanceof BedError && e.code === 'BED_CLOSED',
  );
});

test('a bad limit or label is refused with BED_INVALID_ARGUMENT', () => {
  const root = fakeRoot('v1');
  for (const [limit, label] of [
    [0, 'ok'],
    [-1, 'ok'],
    [Number.NaN, 'ok'],
    [0.5, 'Bad/Label'],
  ] as const) {
    assert.throws(
      () => CpuPod.create(limit, label, root),
      (e: unknown) => e instanceof BedError && e.code === 'BED_INVALID_ARGUMENT',
    );
  }
});
