// Shared by the enricher tests: an in-process enricher on port 0 in a temp dir, an enricher
// CLI child process with its log lines, captured log lines, a link client pumping batches,
// CSV rows read back from committed chunks, throwaway certificates (openssl).

import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { Enricher, type EnricherAddresses, type EnricherOptions } from '../../enricher/enricher';
import { captureLog, type LogLine } from './capture-log';
import type { TestAgent } from './link-client';
import { finalFiles, parseChunk } from './output-rows';

export { captureLog, type LogLine };

export function tmpDir(t: TestContext, prefix = 'snowtap-enr-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface Started {
  enricher: Enricher;
  addresses: EnricherAddresses;
  port: number;
  dir: string;
  lines: LogLine[];
}

/** An enricher on 127.0.0.1:0 writing to a temp dir; stopped (drained) after the test. */
export async function startEnricher(
  t: TestContext,
  over: Partial<EnricherOptions> = {},
  outputDir?: string,
): Promise<Started> {
  const dir = outputDir ?? tmpDir(t);
  const { log, lines } = captureLog();
  const enricher = new Enricher({
    id: 'enr-test',
    output: { outputDir: dir, maxAgeMs: 60_000 },
    listen: { host: '127.0.0.1', port: 0 },
    metricsListen: null,
    drainTimeoutMs: 2000,
    log,
    ...over,
  });
  const addresses = await enricher.start();
  t.after(() => enricher.stop());
  return { enricher, addresses, port: addresses.link, dir, lines };
}

const MAIN = path.resolve(__dirname, '../../cli/main.js');

/** `snowtap enricher` as a child process, its log read from stderr as it comes. */
export interface EnricherChild {
  proc: ChildProcess;
  /** Its JSON log lines so far; a line that is not JSON is kept as { msg: text, level: 'fatal' }. */
  lines: LogLine[];
  /** The link port, from its "enricher ready" line; rejects (with the log) if it exits first. */
  ready: Promise<number>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Spawns `snowtap enricher ARGS` with `env` added to this process's environment. */
export function spawnEnricherChild(args: readonly string[], env: Record<string, string>): EnricherChild {
  const proc = spawn(process.execPath, [MAIN, 'enricher', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...env },
  });
  const lines: LogLine[] = [];
  let onReady: (port: number) => void = () => undefined;
  let buffered = '';
  proc.stderr!.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
      const text = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      let line: LogLine;
      try {
        line = JSON.parse(text);
      } catch {
        line = { msg: text, level: 'fatal' };
      }
      lines.push(line);
      if (line.msg === 'enricher ready') onReady(line.link as number);
    }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const ready = new Promise<number>((resolve, reject) => {
    onReady = resolve;
    exited.then((e) =>
      reject(new Error(`enricher exited early (${JSON.stringify(e)}): ${JSON.stringify(lines)}`)),
    );
  });
  return { proc, lines, ready, exited };
}

/**
 * Sends batches 1, 2, ... (records from recordsFor(seq)) keeping `window` unacknowledged,
 * until stop() holds or the connection closes; returns the seqs sent. Fails when no ack
 * frees the window within waitMs.
 */
export async function pumpBatches(
  agent: TestAgent,
  window: number,
  stop: () => boolean,
  recordsFor: (seq: number) => Buffer[],
  waitMs = 20_000,
): Promise<number[]> {
  const sent: number[] = [];
  while (!stop() && !agent.closedFlag) {
    while (sent.length - agent.acked.size < window && !stop()) {
      const seq = sent.length + 1;
      agent.sendBatch(seq, recordsFor(seq));
      sent.push(seq);
    }
    await agent.until(() => sent.length - agent.acked.size < window || stop() || agent.closedFlag, waitMs);
  }
  return sent;
}

/** Every data row of every committed chunk under dir. */
export async function committedRows(dir: string): Promise<Record<string, string>[]> {
  const rows: Record<string, string>[] = [];
  for (const f of finalFiles(dir)) rows.push(...(await parseChunk(path.join(dir, f))));
  return rows;
}

export function findLog(lines: LogLine[], msg: string): LogLine[] {
  return lines.filter((l) => l.msg === msg);
}

export { type Certs, makeCerts } from './certs';

/** Polls pred() every 10 ms until it holds; rejects after timeoutMs naming `what`. */
export async function waitFor(pred: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
