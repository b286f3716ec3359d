// What the test-bed interop tests (test/interop/) need from the machine: root, iproute2 with
// `ip netns`, and per test iptables-restore / nft / conntrack / haproxy / a cgroup cpu controller.
// Missing pieces go through the project's interop rule (skip on a laptop, fail in CI).

import { execFileSync } from 'node:child_process';
import type { TestContext } from 'node:test';
import { detectCgroupVersion } from '../../loadtest/cpu-pod';
import { interopMissing } from './interop';

const PACKAGES: Record<string, string> = {
  ip: 'iproute2',
  'iptables-restore': 'iptables',
  nft: 'nftables',
  conntrack: 'conntrack',
  haproxy: 'haproxy',
};

function onPath(binary: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${binary}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** True when running as root with every binary in `tools` available; otherwise skips/fails `t`. */
export function needBed(t: TestContext, tools: readonly string[], cgroup = false): boolean {
  if (process.getuid?.() !== 0)
    return interopMissing(t, 'the test bed needs root (network namespaces, cgroups)');
  const missing = ['ip', ...tools].filter((b) => !onPath(b));
  if (missing.length > 0) {
    const pkgs = [...new Set(missing.map((b) => PACKAGES[b] ?? b))].join(' ');
    return interopMissing(t, `${missing.join(', ')} not installed: apt-get install -y ${pkgs}`);
  }
  if (cgroup && detectCgroupVersion() === null)
    return interopMissing(t, 'no cgroup cpu controller under /sys/fs/cgroup');
  return true;
}
