// Load-test helpers shared by the agent benchmarks: a minimal enricher that counts records and
// acknowledges every batch at once (so only the agent is measured), and readings of a process's
// CPU time and memory from /proc.

import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { boundPort, listen } from '../common/listen';
import { adoptSharedReads, onChunks } from '../common/shared-reads';
import {
  Accepts,
  BatchView,
  decodeControl,
  EnricherHandshake,
  encodeControl,
  LinkFrameDecoder,
  MessageType,
} from '../proto/link';

/** An enricher that only counts records and acks every batch at once. */
export async function ackingEnricher(): Promise<{
  server: net.Server;
  port: number;
  stats: { records: number; batches: number };
}> {
  const stats = { records: 0, batches: 0 };
  const handshake = new EnricherHandshake({
    enricherId: 'bench',
    maxInFlightBatches: 64,
    keepaliveIntervalMs: 0,
  });
  // Reads into one shared buffer (common/shared-reads.ts, as the agent reads dnstap): no new
  // 64 KiB Buffer per read, and a whole batch usually lies inside one read, so the decoder
  // copies nothing. Measured 2026-12-07 (`bench-e2e --acking-peer --pin`, Node 24, 3 runs each):
  // the peer's CPU while the agent absorbs fstrm_replay went from 0.10-0.13 cores ('data'
  // events) to 0.06-0.07, on the agent's core.
  const server = net.createServer({ pauseOnConnect: true }, (accepted) => {
    const socket = adoptSharedReads(accepted);
    socket.setNoDelay(true);
    socket.on('error', () => {});
    const view = new BatchView();
    const decoder = new LinkFrameDecoder({
      accept: Accepts.ENRICHER_AWAIT_HELLO,
      onFrame: (type, buf, start, end) => {
        if (type === MessageType.HELLO) {
          const v = handshake.answer(decodeControl(type, buf, start, end));
          if (!v.ok) return void socket.end(encodeControl(MessageType.REJECT, v.reject));
          decoder.accept(Accepts.ENRICHER_OPEN);
          socket.write(encodeControl(MessageType.WELCOME, v.welcome));
        } else if (type === MessageType.BATCH) {
          view.parse(buf, start, end);
          stats.records += view.recordCount;
          stats.batches++;
          socket.write(encodeControl(MessageType.ACK, { seqs: [view.seq] }));
        } else if (type === MessageType.GOODBYE) {
          socket.end();
        }
      },
    });
    onChunks(socket, (d) => decoder.write(d));
  });
  await listen(server, { port: 0, host: '127.0.0.1' });
  return { server, port: boundPort(server), stats };
}

/** A numeric `/proc/PID/status` field as written (0 when absent); fields in kB stay in kB. */
function statusField(pid: number, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

/** A `/proc/PID/status` field given in kB (VmRSS, VmHWM, ...), in bytes. */
export function procStatus(pid: number, field: string): number {
  return statusField(pid, field) * 1024;
}

/** Nanoseconds all the process's threads have run so far (each thread's schedstat under /proc/PID/task). */
export function runNanoseconds(pid: number): number {
  let ns = 0;
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return ns;
}

/** The main thread's voluntary context switches so far: how often its event loop went to sleep. */
export function voluntarySwitches(pid: number): number {
  return statusField(pid, 'voluntary_ctxt_switches');
}

/** User + system CPU seconds the process has used so far. */
export function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in clock ticks (USER_HZ = 100)
}
