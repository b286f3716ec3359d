// Shared by the enricher tests: an in-process enricher on port 0 in a temp dir, captured
// pino lines, CSV rows read back from committed chunks, throwaway certificates (openssl).

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import pino from 'pino';
import { Enricher, type EnricherAddresses, type EnricherOptions } from '../../enricher/enricher';
import { finalFiles, parseChunk } from './output-rows';

export type LogLine = Record<string, unknown> & { msg: string; level: number };

export function tmpDir(t: TestContext, prefix = 'snowtap-enr-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A pino logger that keeps every line (parsed) in `lines`. */
export function captureLog(): { log: pino.Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => lines.push(JSON.parse(s)) });
  return { log, lines };
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

export interface Certs {
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A client certificate from a CA the server does not trust. */
  strangerCert: string;
  strangerKey: string;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}

/** A throwaway CA, a server cert for 127.0.0.1/localhost, a client cert, and a stranger's. */
export function makeCerts(dir: string): Certs {
  const key = (name: string) =>
    openssl(dir, ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', name]);
  const ca = (name: string) => {
    key(`${name}.key`);
    openssl(dir, [
      'req',
      '-x509',
      '-new',
      '-key',
      `${name}.key`,
      '-subj',
      `/CN=${name}`,
      '-days',
      '2',
      '-out',
      `${name}.pem`,
    ]);
  };
  const leaf = (name: string, caName: string, ext: string) => {
    key(`${name}.key`);
    openssl(dir, ['req', '-new', '-key', `${name}.key`, '-subj', `/CN=${name}`, '-out', `${name}.csr`]);
    fs.writeFileSync(path.join(dir, `${name}.ext`), ext);
    openssl(dir, [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      `${caName}.pem`,
      '-CAkey',
      `${caName}.key`,
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      `${name}.ext`,
      '-out',
      `${name}.pem`,
    ]);
  };
  ca('ca');
  ca('stranger-ca');
  leaf('server', 'ca', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  leaf('client', 'ca', 'extendedKeyUsage=clientAuth\n');
  leaf('stranger', 'stranger-ca', 'extendedKeyUsage=clientAuth\n');
  const p = (f: string) => path.join(dir, f);
  return {
    ca: p('ca.pem'),
    serverCert: p('server.pem'),
    serverKey: p('server.key'),
    clientCert: p('client.pem'),
    clientKey: p('client.key'),
    strangerCert: p('stranger.pem'),
    strangerKey: p('stranger.key'),
  };
}

/** Polls pred() every 10 ms until it holds; rejects after timeoutMs naming `what`. */
export async function waitFor(pred: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
