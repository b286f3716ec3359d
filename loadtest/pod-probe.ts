// Two tiny programs that run INSIDE a test bed's network namespace (the harness itself stays in
// the host namespace and cannot open sockets there), plus their host-side drivers:
// - `node pod-probe.js serve ADDR PORT ID`: a "pod" that answers every TCP connection with
//   `ID\n` and every line it then receives with `ID\n` again (so a held connection can be asked
//   which pod it is on). Prints `ready\n` once listening.
// - `node pod-probe.js client`: a client driven by JSON lines on stdin, one answer line per
//   request on stdout: spread N new connections over a Service, hold a connection open and ping
//   it later, or GET an HTTP URL (an enricher's /readyz at its pod address).

import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { BedError } from './bed-errors';
import type { ArgvWrapper, Netns, NetnsProcess } from './netns';

export const PROBE_MAIN = path.resolve(__dirname, 'pod-probe.js');
const IO_TIMEOUT_MS = 5_000;

export type ProbeRequest =
  | { op: 'spread'; host: string; port: number; n: number }
  | { op: 'open'; host: string; port: number; key: string }
  | { op: 'ping'; key: string }
  | { op: 'close'; key: string }
  | { op: 'http'; url: string };

export interface ProbeAnswer {
  ok: boolean;
  error?: string;
  /** spread: connections per pod id; failures counted under "error". */
  counts?: Record<string, number>;
  /** open / ping: the id of the pod at the other end. */
  id?: string;
  status?: number;
  body?: string;
}

// ---- in-namespace programs ----

function serve(addr: string, port: number, id: string): void {
  const server = net.createServer((c) => {
    c.on('error', () => {});
    c.setNoDelay(true);
    c.write(`${id}\n`);
    c.on('data', () => c.write(`${id}\n`));
  });
  server.listen(port, addr, () => process.stdout.write('ready\n'));
  process.on('SIGTERM', () => process.exit(0));
}

/** One line from `sock` (the pod id), or an error after IO_TIMEOUT_MS. */
function readLine(sock: net.Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => done(new Error('no answer')), IO_TIMEOUT_MS);
    const onData = (d: Buffer) => {
      buf += d.toString('utf8');
      const nl = buf.indexOf('\n');
      if (nl >= 0) done(null, buf.slice(0, nl));
    };
    const onEnd = () => done(new Error('closed'));
    const done = (err: Error | null, line?: string) => {
      clearTimeout(timer);
      sock.off('data', onData).off('error', onEnd).off('close', onEnd);
      if (err) reject(err);
      else resolve(line!);
    };
    sock.on('data', onData).on('error', onEnd).on('close', onEnd);
  });
}

async function connectId(host: string, port: number): Promise<{ sock: net.Socket; id: string }> {
  const sock = net.createConnection({ host, port });
  sock.setNoDelay(true);
  const first = readLine(sock);
  first.catch(() => {});
  await Promise.race([once(sock, 'connect'), first]);
  return { sock, id: await first };
}

async function client(): Promise<void> {
  const held = new Map<string, net.Socket>();
  const handle = async (r: ProbeRequest): Promise<ProbeAnswer> => {
    switch (r.op) {
      case 'spread': {
        const counts: Record<string, number> = {};
        for (let i = 0; i < r.n; i++) {
          try {
            const { sock, id } = await connectId(r.host, r.port);
            counts[id] = (counts[id] ?? 0) + 1;
            sock.destroy();
          } catch {
            counts.error = (counts.error ?? 0) + 1;
          }
        }
        return { ok: true, counts };
      }
      case 'open': {
        const { sock, id } = await connectId(r.host, r.port);
        sock.on('error', () => {});
        held.set(r.key, sock);
        return { ok: true, id };
      }
      case 'ping': {
        const sock = held.get(r.key);
        if (!sock) return { ok: false, error: `no connection '${r.key}'` };
        const line = readLine(sock);
        sock.write('ping\n');
        return { ok: true, id: await line };
      }
      case 'close':
        held.get(r.key)?.destroy();
        held.delete(r.key);
        return { ok: true };
      case 'http': {
        const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
          const req = http.get(r.url, { timeout: IO_TIMEOUT_MS }, (m) => {
            let body = '';
            m.setEncoding('utf8').on('data', (d: string) => (body += d));
            m.on('end', () => resolve({ status: m.statusCode ?? 0, body }));
          });
          req.on('timeout', () => req.destroy(new Error('timeout')));
          req.on('error', reject);
        });
        return { ok: true, ...res };
      }
    }
  };
  const rl = readline.createInterface({ input: process.stdin });
  // Requests are answered strictly in order, one at a time.
  let chain = Promise.resolve();
  rl.on('line', (line) => {
    chain = chain.then(async () => {
      let answer: ProbeAnswer;
      try {
        answer = await handle(JSON.parse(line) as ProbeRequest);
      } catch (err) {
        answer = { ok: false, error: err instanceof Error ? err.message : String(err) };
      }
      process.stdout.write(JSON.stringify(answer) + '\n');
    });
  });
  rl.on('close', () => {
    for (const s of held.values()) s.destroy();
  });
}

// ---- host-side drivers ----

/** Waits for one line from a child's stdout. */
function nextLine(
  lines: readline.Interface,
  proc: NetnsProcess,
  timeoutMs: number,
  what: string,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => finish(new BedError('BED_PROBE_FAILED', `${what}: no answer in ${timeoutMs} ms`)),
      timeoutMs,
    );
    const onLine = (l: string) => finish(null, l);
    const onExit = () => finish(new BedError('BED_PROBE_FAILED', `${what}: process exited`));
    const finish = (err: Error | null, l?: string) => {
      clearTimeout(timer);
      lines.off('line', onLine);
      proc.child.off('exit', onExit);
      if (err) reject(err);
      else resolve(l!);
    };
    lines.on('line', onLine);
    proc.child.once('exit', onExit);
  });
}

/** A "pod": the serve program at `address:port` inside the namespace, ready when this resolves. */
export async function startEchoPod(
  netns: Netns,
  address: string,
  port: number,
  id: string,
  wrapper?: ArgvWrapper,
): Promise<NetnsProcess> {
  const proc = netns.spawn([process.execPath, PROBE_MAIN, 'serve', address, String(port), id], { wrapper });
  const lines = readline.createInterface({ input: proc.child.stdout! });
  try {
    const l = await nextLine(lines, proc, IO_TIMEOUT_MS, `pod ${id}`);
    if (l !== 'ready') throw new BedError('BED_PROBE_FAILED', `pod ${id} said '${l}'`);
  } catch (err) {
    await proc.stop('SIGKILL');
    throw err;
  } finally {
    lines.close();
  }
  return proc;
}

/**
 * A child inside the namespace spoken to in lines: each exchange writes one line to its stdin
 * and waits for one answer line, one exchange at a time (the probe client, the API server
 * stand-in of kube-api-bed.ts).
 */
export class LineChannel {
  private readonly lines: readline.Interface;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(readonly proc: NetnsProcess) {
    this.lines = readline.createInterface({ input: proc.child.stdout! });
  }

  /** The next line the child prints without being asked (e.g. `ready`). */
  next(timeoutMs: number, what: string): Promise<string> {
    return nextLine(this.lines, this.proc, timeoutMs, what);
  }

  exchange(line: string, timeoutMs: number, what: string): Promise<string> {
    const run = this.queue.then(async () => {
      const answer = this.next(timeoutMs, what);
      this.proc.child.stdin!.write(`${line}\n`);
      return answer;
    });
    this.queue = run.catch(() => {});
    return run;
  }

  async close(): Promise<void> {
    this.lines.close();
    this.proc.child.stdin!.end();
    await this.proc.stop('SIGTERM', 2_000);
  }
}

/** The client program inside the namespace; one request at a time. */
export class ProbeClient {
  readonly proc: NetnsProcess;
  private readonly channel: LineChannel;

  constructor(netns: Netns) {
    this.proc = netns.spawn([process.execPath, PROBE_MAIN, 'client']);
    this.channel = new LineChannel(this.proc);
  }

  async request(r: ProbeRequest, timeoutMs = 30_000): Promise<ProbeAnswer> {
    return JSON.parse(
      await this.channel.exchange(JSON.stringify(r), timeoutMs, `probe ${r.op}`),
    ) as ProbeAnswer;
  }

  /** Like request(), but an answer with ok=false is thrown as BED_PROBE_FAILED. */
  async must(r: ProbeRequest, timeoutMs?: number): Promise<ProbeAnswer> {
    const a = await this.request(r, timeoutMs);
    if (!a.ok) throw new BedError('BED_PROBE_FAILED', `probe ${r.op}: ${a.error}`);
    return a;
  }

  close(): Promise<void> {
    return this.channel.close();
  }
}

if (require.main === module) {
  const [role, ...rest] = process.argv.slice(2);
  if (role === 'serve' && rest.length === 3) serve(rest[0]!, Number(rest[1]), rest[2]!);
  else if (role === 'client') void client();
  else {
    process.stderr.write('usage: pod-probe.js serve ADDR PORT ID | client\n');
    process.exit(2);
  }
}
