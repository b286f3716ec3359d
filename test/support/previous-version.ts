// The previous Snowtap version, built from this repository's history for upgrade tests: the
// commit's tree (`git archive`) compiled with tsc into a cache directory keyed by the commit
// hash under the temp directory, so a second run reuses it. node_modules is this checkout's
// when the commit's dependencies are the same (they are for the first-wave commit), else
// `npm ci --prefer-offline` in the build directory (the npm cache, else the registry: on a
// fresh machine the cache lacks what only the old commit uses, e.g. pino's dependencies).
import { execFile } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const REPO_ROOT = path.resolve(__dirname, '../../..');

/**
 * The commit that closed the first wave (2026-11-22): "DNS cursor: skip() -> advance() ...".
 * Found as the parent of the first second-wave commit, e41693f (2026-12-06, the first after the
 * two-week gap; the issue 7..13 work follows it): `git log -1 --format=%P e41693f`.
 * Its link protocol is version 1, like today's (proto/link/constants.ts).
 */
export const FIRST_WAVE_COMMIT = 'cdac6758199e7dba376013221958a172a6856357';

export interface PreviousBuild {
  commit: string;
  /** Root of the built tree; its CLI is dist/cli/main.js. */
  dir: string;
  main: string;
  /** Seconds the build took (0: taken from the cache). */
  buildSeconds: number;
}

function run(cmd: string, args: readonly string[], cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd, maxBuffer: 256 << 20, encoding: 'buffer' }, (err, stdout, stderr) => {
      if (err)
        reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${stderr.toString().slice(-4000)}`));
      else resolve(stdout.toString());
    });
  });
}

/** Why the previous version cannot be built here (no git, commit not in a shallow clone), or null. */
export async function previousVersionMissing(commit = FIRST_WAVE_COMMIT): Promise<string | null> {
  try {
    await run('git', ['-C', REPO_ROOT, 'cat-file', '-e', `${commit}^{commit}`], REPO_ROOT);
    return null;
  } catch (err) {
    return `git cannot read commit ${commit.slice(0, 12)} (git missing, or a shallow clone: fetch the full history): ${(err as Error).message.split('\n')[0]}`;
  }
}

function sameDependencies(dir: string): boolean {
  const deps = (file: string) => {
    const p = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    return JSON.stringify([p.dependencies, p.devDependencies]);
  };
  return deps(path.join(dir, 'package.json')) === deps(path.join(REPO_ROOT, 'package.json'));
}

/**
 * Whether every runtime dependency of the build in `dir` resolves from its node_modules. A
 * cached build that shared a checkout's node_modules (a symlink) breaks when that checkout
 * drops a dependency the old commit still uses (pino, 2026-12-07): it is then built again.
 */
function dependenciesResolve(dir: string): boolean {
  const p = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as {
    dependencies?: Record<string, string>;
  };
  return Object.keys(p.dependencies ?? {}).every((name) =>
    existsSync(path.join(dir, 'node_modules', name, 'package.json')),
  );
}

/** Builds (or takes from the cache) the given commit; the cache is os.tmpdir()/snowtap-prev-<commit>. */
export async function buildPrevious(commit = FIRST_WAVE_COMMIT): Promise<PreviousBuild> {
  const dir = path.join(os.tmpdir(), `snowtap-prev-${commit}`);
  const main = path.join(dir, 'dist/cli/main.js');
  if (existsSync(path.join(dir, '.built')) && existsSync(main)) {
    if (dependenciesResolve(dir)) return { commit, dir, main, buildSeconds: 0 };
    rmSync(dir, { recursive: true, force: true });
  }
  const t0 = Date.now();
  const stage = mkdtempSync(path.join(os.tmpdir(), `snowtap-prev-${commit.slice(0, 12)}-build-`));
  try {
    const tar = path.join(stage, 'src.tar');
    await run('git', ['-C', REPO_ROOT, 'archive', '--format=tar', '-o', tar, commit], REPO_ROOT);
    await run('tar', ['-xf', tar], stage);
    rmSync(tar);
    if (sameDependencies(stage)) {
      symlinkSync(realpathSync(path.join(REPO_ROOT, 'node_modules')), path.join(stage, 'node_modules'));
    } else {
      await run('npm', ['ci', '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund'], stage);
    }
    const tsc = path.join(stage, 'node_modules/typescript/bin/tsc');
    await run(process.execPath, [tsc, '-p', 'tsconfig.json'], stage);
    for (const sub of readdirSync(path.join(stage, 'proto'))) {
      for (const f of readdirSync(path.join(stage, 'proto', sub)).filter((n) => n.endsWith('.proto')))
        cpSync(path.join(stage, 'proto', sub, f), path.join(stage, 'dist/proto', sub, f));
    }
    writeFileSync(path.join(stage, '.built'), `${commit}\n`);
    try {
      renameSync(stage, dir);
    } catch {
      // Another run finished the same build first: use it.
      if (!existsSync(path.join(dir, '.built'))) throw new Error(`cannot place the build at ${dir}`);
      rmSync(stage, { recursive: true, force: true });
    }
  } catch (err) {
    rmSync(stage, { recursive: true, force: true });
    throw err;
  }
  return { commit, dir, main, buildSeconds: (Date.now() - t0) / 1000 };
}
