// `snowtap --version`: the package version, the git commit the build was made from, and the
// Node version. The commit is recorded at build time (`npm run build` runs this file, which
// writes dist/build-info.json): `git rev-parse`, else $SNOWTAP_COMMIT (the Docker build has
// no .git), else 'unknown'.
import type * as ChildProcess from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** dist/cli -> dist/build-info.json; dist/cli -> the package root's package.json. */
const BUILD_INFO = path.join(__dirname, '../build-info.json');
const PACKAGE_JSON = path.join(__dirname, '../../package.json');

export interface BuildInfo {
  version: string;
  commit: string;
}

function readJson(file: string): Record<string, unknown> | null {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
}

export function buildInfo(): BuildInfo {
  const built = readJson(BUILD_INFO);
  const pkg = readJson(PACKAGE_JSON);
  return {
    version: String(built?.version ?? pkg?.version ?? 'unknown'),
    commit: String(built?.commit ?? 'unknown'),
  };
}

export function versionLine(): string {
  const b = buildInfo();
  return `snowtap ${b.version} (commit ${b.commit}, node ${process.version})\n`;
}

function commitAtBuild(): string {
  try {
    // Loaded here, at build time only: not in every command's start-up.
    const { execFileSync } = require('node:child_process') as typeof ChildProcess;
    const out = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], {
      cwd: path.dirname(PACKAGE_JSON),
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    return out.toString().trim();
  } catch {
    return process.env.SNOWTAP_COMMIT || 'unknown';
  }
}

if (require.main === module) {
  const pkg = readJson(PACKAGE_JSON);
  const info: BuildInfo = { version: String(pkg?.version ?? 'unknown'), commit: commitAtBuild() };
  writeFileSync(BUILD_INFO, JSON.stringify(info) + '\n');
}
