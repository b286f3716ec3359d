// Child-process harness for end-to-end tests: a real `snowtap enricher` and `snowtap agent`
// started through the CLI (as operators run them), their metrics scraped, stopped by PID.
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { freeTcpPort } from '../../common/listen';
import { finalFiles, parseChunk } from './output-rows';

export const MAIN = path.resolve(__dirname, '../../cli/main.js');

export function tmpDir(t: TestContext, prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export { freeTcpPort };

export interface Proc {
  child: ChildProcess;
  /** Everything written to stderr so far (JSON log lines). */
  log: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  metricsPort: number;
}

export function startSnowtap(
  t: TestContext,
  args: string[],
  metricsPort: number,
  env: NodeJS.ProcessEnv = {},
  /** Another build's CLI (upgrade tests run the previous version's dist/cli/main.js). */
  main = MAIN,
): Proc {
  const child = spawn(process.execPath, [main, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, SNOWTAP_LOG_LEVEL: 'info', ...env },
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
  });
  child.stdout!.resume();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, log: () => err, exited, metricsPort };
}

/** Polls /metrics and returns the summed value of every sample of `name` (any labels). */
export async function metric(port: number, name: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  const text = await res.text();
  let sum = 0;
  let seen = false;
  for (const line of text.split('\n')) {
    if (line.startsWith(name + ' ') || line.startsWith(name + '{')) {
      sum += Number(line.slice(line.lastIndexOf(' ') + 1));
      seen = true;
    }
  }
  if (!seen) throw new Error(`metric ${name} not found on :${port}`);
  return sum;
}

/** The end of a process's log, for an error message. */
export function logTail(p: Proc, chars = 2000): string {
  const log = p.log();
  return log.length > chars ? `...${log.slice(-chars)}` : log;
}

export async function waitUntil(
  pred: () => Promise<boolean> | boolean,
  what: string,
  timeoutMs = 20_000,
  /** Fails at once, with its exit status and log tail, if this process has ended. */
  watch?: Proc,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < until) {
    const { exitCode, signalCode } = watch?.child ?? {};
    if (watch && (exitCode != null || signalCode != null))
      throw new Error(
        `waiting for ${what}: the process exited (${exitCode ?? signalCode}); its log:\n${logTail(watch)}`,
      );
    try {
      if (await pred()) return;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${last})` : ''}`);
}

export async function waitReady(port: number, timeoutMs = 20_000): Promise<void> {
  await waitUntil(
    async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200,
    `readyz on :${port}`,
    timeoutMs,
  );
}

export interface EnricherProc extends Proc {
  linkPort: number;
  outputDir: string;
}

export async function startEnricher(
  t: TestContext,
  outputDir: string,
  extra: string[] = [],
  id = 'enr-e2e',
): Promise<EnricherProc> {
  const linkPort = await freeTcpPort();
  const metricsPort = await freeTcpPort();
  const p = startSnowtap(
    t,
    [
      'enricher',
      '--listen',
      `127.0.0.1:${linkPort}`,
      '--metrics-listen',
      `127.0.0.1:${metricsPort}`,
      '--output-dir',
      outputDir,
      '--id',
      id,
      '--rotate-max-age',
      '1',
      ...extra,
    ],
    metricsPort,
  );
  await waitReady(metricsPort);
  return { ...p, linkPort, outputDir };
}

/** Restart an enricher on the same ports and output dir (after a crash). */
export async function restartEnricher(
  t: TestContext,
  prev: EnricherProc,
  extra: string[] = [],
  id = 'enr-e2e',
): Promise<EnricherProc> {
  const p = startSnowtap(
    t,
    [
      'enricher',
      '--listen',
      `127.0.0.1:${prev.linkPort}`,
      '--metrics-listen',
      `127.0.0.1:${prev.metricsPort}`,
      '--output-dir',
      prev.outputDir,
      '--id',
      id,
      '--rotate-max-age',
      '1',
      ...extra,
    ],
    prev.metricsPort,
  );
  await waitReady(prev.metricsPort);
  return { ...p, linkPort: prev.linkPort, outputDir: prev.outputDir };
}

export async function startAgent(t: TestContext, args: string[], id = 'agent-e2e'): Promise<Proc> {
  const metricsPort = await freeTcpPort();
  return startSnowtap(
    t,
    ['agent', '--metrics-listen', `127.0.0.1:${metricsPort}`, '--id', id, ...args],
    metricsPort,
  );
}

/** Every data row of every committed chunk under dir. */
export async function committedRows(dir: string): Promise<Record<string, string>[]> {
  const files = finalFiles(dir).map((f) => path.join(dir, f));
  return (await Promise.all(files.map(parseChunk))).flat();
}

/** Wait for a process to exit within ms; returns its exit code (SIGKILLs it and throws on timeout). */
export async function exitWithin(p: Proc, ms: number, what: string): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      p.child.kill('SIGKILL');
      reject(new Error(`${what} did not exit within ${ms} ms; log tail:\n${p.log().slice(-3000)}`));
    }, ms);
  });
  try {
    return (await Promise.race([p.exited, timeout])).code;
  } finally {
    clearTimeout(timer);
  }
}
