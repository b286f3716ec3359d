// mkdir -p that always ends. Node's recursive mkdir retries forever when mkdir(2) says ENOENT
// although the parent exists, which is what /proc and some FUSE file systems answer: a path
// such as /proc/self/x spun a libuv thread (async) or the main thread (sync, deaf to SIGTERM)
// at 100 % CPU. Here each missing component is created once, from the deepest existing
// ancestor down, and any error is final.
import { promises as fsp, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';

/** The missing directories of `abs`, outermost first. */
function missingFrom(abs: string, exists: (p: string) => boolean): string[] {
  const missing: string[] = [];
  for (let dir = abs; !exists(dir); dir = path.dirname(dir)) {
    missing.unshift(dir);
    if (path.dirname(dir) === dir) break;
  }
  return missing;
}

function existsSync(p: string): boolean {
  try {
    statSync(p);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** Like mkdirSync(p, { recursive: true }): returns the first directory created, if any. */
export function mkdirpSync(p: string): string | undefined {
  const missing = missingFrom(path.resolve(p), existsSync);
  for (const dir of missing) {
    try {
      mkdirSync(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || !statSync(dir).isDirectory()) throw err;
    }
  }
  return missing[0];
}

/** Like fsp.mkdir(p, { recursive: true }): resolves with the first directory created, if any. */
export async function mkdirp(p: string): Promise<string | undefined> {
  const abs = path.resolve(p);
  const missing: string[] = [];
  for (let dir = abs; ; dir = path.dirname(dir)) {
    try {
      await fsp.stat(dir);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    missing.unshift(dir);
    if (path.dirname(dir) === dir) break;
  }
  for (const dir of missing) {
    try {
      await fsp.mkdir(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || !(await fsp.stat(dir)).isDirectory()) throw err;
    }
  }
  return missing[0];
}
