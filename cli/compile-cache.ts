// Imported first by main.ts, so that it runs before any other module is loaded: V8's code
// cache for `snowtap convert` (Node >= 22.1; nothing before). A convert is a short process,
// and compiling its modules (the logger's included) took ~40 ms of every run. The cache lives
// in $NODE_COMPILE_CACHE or the system temp dir; Node disables it quietly when that cannot be
// written. Not for the servers: their start-up time does not matter, and they should not
// write to a pod's file system behind its back.
import * as nodeModule from 'node:module';

if (process.argv[2] === 'convert') {
  (nodeModule as { enableCompileCache?: () => unknown }).enableCompileCache?.();
}
