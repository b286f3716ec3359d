// Last-resort cleanup for the test bed: network namespaces and cgroups outlive the process that
// made them, so whatever is still registered here is removed synchronously when the harness
// exits, including on an uncaught exception ('exit' fires) and on SIGINT/SIGTERM (it does not:
// a signal kills the process without 'exit', hence the signal handlers). One registry, so the
// cleanups of every module run before the process goes, in reverse order of registration.

type Cleanup = () => void;

const cleanups = new Set<Cleanup>();
let installed = false;

function runAll(): void {
  for (const fn of [...cleanups].reverse()) {
    try {
      fn();
    } catch {
      // best effort: keep cleaning the rest
    }
  }
  cleanups.clear();
}

function install(): void {
  if (installed) return;
  installed = true;
  process.once('exit', runAll);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    const onSignal = () => {
      runAll();
      process.removeListener(sig, onSignal);
      // If the harness handles the signal itself, let it; otherwise die of it as if unhandled.
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}

/** Runs `fn` (synchronous) if the process exits or is interrupted first; returns the unregister. */
export function onBedExit(fn: Cleanup): () => void {
  install();
  cleanups.add(fn);
  return () => cleanups.delete(fn);
}
