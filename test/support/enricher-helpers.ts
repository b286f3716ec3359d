// Shared by the enricher tests: an in-process enricher on port 0 in a temp dir, captured
// log lines, CSV rows read back from committed chunks, throwaway certificates (openssl).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { Enricher, type EnricherAddresses, type EnricherOptions } from '../../enricher/enricher';
import { captureLog, type LogLine } from './capture-log';
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
