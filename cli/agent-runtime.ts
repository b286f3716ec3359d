// `snowtap agent --runtime lean|full`: how the sidecar's Node process is sized. The agent sits
// beside every resolver, and most of its resident memory is not its own data but Node's
// binary: the pages of code it has executed count in RSS. V8's top compiler (TurboFan) is
// several MiB of machine code that the agent touches as soon as any function gets hot, while
// its hot path (copying frames into batches) gains nothing measurable from it over the
// mid-tier compiler (Maglev). So `lean` (the default) re-executes the process, before it has
// opened anything, with:
//   --max-opt=2         Maglev is the top tier: no TurboFan code pages, no TurboFan zones
//   --v8-pool-size=1    one V8 worker thread (concurrent compiles, GC helpers) instead of four
//   MALLOC_ARENA_MAX=1  one glibc malloc arena: worker threads do not keep arenas of their own
// Measured (loadtest/PERFORMANCE.md "What changed, measured"): peak RSS at a steady 100 k frames/s on Node 24
// 71-72 -> 64 MiB, CPU per frame within run-to-run noise (0.64-0.68 vs 0.60-0.67 µs).
//
// The re-execution is process.execve (Node >= 22.15 / 23.11, "Stability: 1 - Experimental"):
// the same PID, so a container runtime or a supervisor sees nothing. Where it is missing
// (Node 20), or fails, the agent runs on as it is (Node's defaults) and says so in its log.
// Flags the user gave node (`node --max-opt=... snowtap agent`) win; flags in NODE_OPTIONS
// carry over through the environment.

export const RUNTIMES = ['lean', 'full'] as const;
export type Runtime = (typeof RUNTIMES)[number];
export const DEFAULT_RUNTIME: Runtime = 'lean';

/** Node flags of the lean runtime, each with the pattern that means the user set it already. */
export const LEAN_NODE_FLAGS: readonly { flag: string; givenAs: RegExp }[] = [
  { flag: '--max-opt=2', givenAs: /^--(max[-_]opt|jitless)\b/ },
  { flag: '--v8-pool-size=1', givenAs: /^--v8[-_]pool[-_]size\b/ },
];
export const LEAN_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '1' };
/** Set in the re-executed process: the runtime is applied (and never applied twice). */
export const RUNTIME_APPLIED_ENV = 'SNOWTAP_RUNTIME_APPLIED';

export type RuntimePlan =
  | { exec: false; runtime: Runtime; note: string | null }
  | { exec: true; file: string; args: string[]; env: Record<string, string> };

export interface ProcessFacts {
  execPath: string;
  execArgv: readonly string[];
  /** process.argv: [node, script, ...arguments]. */
  argv: readonly string[];
  env: Readonly<Record<string, string | undefined>>;
  hasExecve: boolean;
  /** process.version, for the log line when lean cannot be had. */
  version: string;
}

/** What `--runtime` asks of this process: nothing, or one process.execve call. Pure. */
export function planRuntime(runtime: Runtime, p: ProcessFacts): RuntimePlan {
  if (runtime === 'full') return { exec: false, runtime: 'full', note: null };
  if (p.env[RUNTIME_APPLIED_ENV] !== undefined) return { exec: false, runtime: 'lean', note: null };
  if (!p.hasExecve) {
    return {
      exec: false,
      runtime: 'full',
      note: `--runtime lean needs process.execve (Node.js >= 22.15); running with Node's defaults on ${p.version}`,
    };
  }
  const missing = LEAN_NODE_FLAGS.filter(({ givenAs }) => !p.execArgv.some((a) => givenAs.test(a))).map(
    ({ flag }) => flag,
  );
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(p.env)) if (v !== undefined) env[k] = v;
  for (const [k, v] of Object.entries(LEAN_ENV)) env[k] ??= v;
  env[RUNTIME_APPLIED_ENV] = 'lean';
  return {
    exec: true,
    file: p.execPath,
    args: [p.execPath, ...missing, ...p.execArgv, ...p.argv.slice(1)],
    env,
  };
}

type Execve = (file: string, args: string[], env: Record<string, string>) => never;

/**
 * Applies `runtime` to this process: returns only if it stays as it is, with a line for the
 * log when lean was asked for and could not be had. Call before anything is opened or started.
 */
export function applyRuntime(runtime: Runtime): string | null {
  const execve = (process as unknown as { execve?: Execve }).execve;
  const plan = planRuntime(runtime, {
    execPath: process.execPath,
    execArgv: process.execArgv,
    argv: process.argv,
    env: process.env,
    hasExecve: typeof execve === 'function',
    version: process.version,
  });
  if (!plan.exec) return plan.note;
  try {
    execve!.call(process, plan.file, plan.args, plan.env);
  } catch (err) {
    return `--runtime lean: process.execve failed (${(err as Error).message}); running with Node's defaults`;
  }
  return null; // not reached: execve replaced the process
}
