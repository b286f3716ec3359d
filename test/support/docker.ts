// Test-side helpers for the Docker image: is an engine there (scripts/ci/docker-setup.sh starts
// one with loopback-only networking), the project's interop rule when it is not (skip, or FAIL
// when SNOWTAP_REQUIRE_INTEROP=1), the cached image build, and testcontainers set up for an
// engine without a bridge network (host networking, no Ryuk reaper container to pull).
import { execFile } from 'node:child_process';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { REPO_ROOT } from './helm';
import { interopMissing } from './interop';

const SETUP_HINT =
  'run scripts/ci/docker-setup.sh (installs docker.io, starts dockerd, builds the base images)';
export const IMAGE = process.env.SNOWTAP_IMAGE ?? 'local/snowtap:dev';
const NODE_TAG = process.version;
export const BASE_IMAGES = [`local/snowtap-node:${NODE_TAG}`, `local/snowtap-node-build:${NODE_TAG}`];

export interface DockerResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function docker(args: readonly string[], timeoutMs = 60_000): Promise<DockerResult> {
  return new Promise((resolve, reject) => {
    execFile('docker', args, { timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') {
        // ENOENT (no docker CLI) reads as "unavailable", not as a crash of the test.
        if ((err as NodeJS.ErrnoException).code === 'ENOENT')
          resolve({ code: 127, stdout, stderr: String(err) });
        else reject(err);
        return;
      }
      resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
    });
  });
}

/** Why Docker cannot be used here, or null when the engine and the base images are ready. */
async function dockerProblem(): Promise<string | null> {
  const info = await docker(['info', '--format', '{{.ServerVersion}}'], 15_000).catch((e: Error) => ({
    code: 1,
    stdout: '',
    stderr: e.message,
  }));
  if (info.code !== 0) return `no Docker engine answers (${info.stderr.trim().split('\n')[0]})`;
  for (const image of BASE_IMAGES) {
    if ((await docker(['image', 'inspect', image], 15_000)).code !== 0)
      return `base image ${image} is missing`;
  }
  return null;
}

/** True when Docker is usable; otherwise skips the test, or throws when interop is required. */
export async function requireDocker(t: TestContext): Promise<boolean> {
  const problem = await dockerProblem();
  if (problem === null) return true;
  return interopMissing(t, `${problem}: ${SETUP_HINT}`);
}

let built: Promise<string> | null = null;

/**
 * Builds the project image from the working tree (scripts/ci/docker-build.sh: layer-cached, so
 * only changed sources rebuild) once per test process; resolves with the image tag.
 */
export function buildImage(): Promise<string> {
  built ??= new Promise((resolve, reject) => {
    const script = path.join(REPO_ROOT, 'scripts/ci/docker-build.sh');
    execFile(
      'bash',
      [script],
      { env: { ...process.env, IMAGE }, timeout: 15 * 60_000 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`docker build failed: ${stderr || err.message}`));
        else resolve(stdout.trim());
      },
    );
  });
  return built;
}

/**
 * testcontainers, loaded only after its environment is set: the engine has no bridge, so no
 * port mapping and no Ryuk container (every test removes its own containers).
 */
export function loadTestcontainers(): typeof import('testcontainers') {
  process.env.TESTCONTAINERS_RYUK_DISABLED ??= 'true';
  process.env.TESTCONTAINERS_HOST_OVERRIDE ??= '127.0.0.1';
  return require('testcontainers') as typeof import('testcontainers');
}

/** A container's exit code and state after it stopped (kept with remove: false). */
export async function exitCodeOf(id: string): Promise<number> {
  const r = await docker(['inspect', '--format', '{{.State.ExitCode}}', id]);
  if (r.code !== 0) throw new Error(`docker inspect ${id}: ${r.stderr}`);
  return Number(r.stdout.trim());
}
