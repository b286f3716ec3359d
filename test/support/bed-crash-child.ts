// A harness that dies badly, for test/interop/bed-cleanup.test.ts: it creates a network
// namespace with an address and a process inside, and a CPU-limited pod holding a process, prints
// their names and PIDs as one JSON line, then, per argv[2], throws an uncaught exception or waits
// for the SIGINT the parent sends. The exit hooks of netns.ts / cpu-pod.ts must remove it all.

import { CpuPod } from '../../loadtest/cpu-pod';
import { Netns } from '../../loadtest/netns';

async function main(): Promise<void> {
  const how = process.argv[2];
  const ns = await Netns.create('crash');
  await ns.addAddress('10.244.9.9');
  const pod = CpuPod.create(0.1, 'crash');
  const sleeper = ns.spawn(['sleep', '300'], { wrapper: pod, stdio: 'ignore' });
  // Wait until the sleeper is in the cgroup (the wrapper's shell writes its PID, then execs).
  for (let i = 0; i < 100 && !pod.pids().includes(sleeper.pid); i++)
    await new Promise((r) => setTimeout(r, 20));
  process.stdout.write(
    `${JSON.stringify({ netns: ns.name, cgroup: pod.dir, pid: sleeper.pid, inPod: pod.pids() })}\n`,
  );
  if (how === 'throw')
    setTimeout(() => {
      throw new Error('harness crashed');
    }, 50);
  else setInterval(() => {}, 1000);
}

void main();
