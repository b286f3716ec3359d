// The socket-level share of the fuzz run: mutated streams sent over real TCP connections to
// common/framestream-server.ts (the dnstap input of agent and enricher) and to the enricher's
// link server, with an in-process model of the same receiver predicting, case by case, what
// the server must count and how the connection must end. The server's own counters (the
// ones its metrics export) must match the model: every bad frame counted, every close reason
// right, and after each case that leaves the stream in sync the sentinel frame arrives.

import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { FrameStreamServer } from '../../common/framestream-server';
import { silentLogger } from '../../common/log';
import { Enricher } from '../../enricher/enricher';
import { ControlType, DNSTAP_CONTENT_TYPE } from '../../proto/framestream/constants';
import { encodeControlFrame } from '../../proto/framestream/control';
import { encodeDataFrame } from '../../proto/framestream/encoder';
import { isFramestreamError } from '../../proto/framestream/errors';
import { Accepts, MessageType, RejectCode } from '../../proto/link/constants';
import { decodeControl } from '../../proto/link/control';
import { LinkFrameDecoder } from '../../proto/link/decoder';
import { chunks, type LengthField, mutate, type Rand, type Seed } from './mutate';
import {
  FstrmModel,
  FUZZ_MAX_DATA_FRAME,
  LINK_SENTINEL_NONCE,
  LINK_TAIL,
  LinkEnricherModel,
  linkEnricherOutcome,
  SENTINEL,
} from './targets';

export interface SocketTally {
  cases: number;
  connections: number;
  outcomes: Record<string, number>;
  /** Model and server disagreed (a counter, a close reason, a missing sentinel). */
  mismatches: string[];
}

function bump(o: Record<string, number>, k: string, n = 1): void {
  o[k] = (o[k] ?? 0) + n;
}

const silent = silentLogger();

/** Data-frame-only bodies (one connection carries many cases after one START). */
export function fstrmBodySeeds(): Seed[] {
  const seeds: Seed[] = [];
  for (const sizes of [[1, 40, 200], [511, 512, 513], [2000, 5], [3], [600, 1, 1, 1], [64, 64, 64, 64]]) {
    const bufs: Buffer[] = [];
    const lengths: LengthField[] = [];
    let at = 0;
    for (const n of sizes) {
      const f = encodeDataFrame(Buffer.alloc(n, n & 0xff));
      lengths.push({ at, width: 4 });
      bufs.push(f);
      at += f.length;
    }
    seeds.push({ bytes: Buffer.concat(bufs), lengths });
  }
  return seeds;
}

/** Data frames with garbage payloads, some above the size limit (skipped and counted). */
function framedGarbage(rand: Rand): Buffer {
  const n = 1 + Math.floor(rand() * 4);
  const frames: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const r = rand();
    const size =
      r < 0.3
        ? FUZZ_MAX_DATA_FRAME + 1 + Math.floor(rand() * 3000)
        : 1 + Math.floor(rand() * FUZZ_MAX_DATA_FRAME);
    const payload = Buffer.alloc(size);
    for (let j = 0; j < size; j++) payload[j] = (rand() * 256) | 0;
    frames.push(encodeDataFrame(payload));
  }
  return Buffer.concat(frames);
}

function writeAll(socket: net.Socket, parts: Buffer[]): void {
  for (const p of parts) if (!socket.destroyed) socket.write(p);
}

/** Frame Streams over TCP: `cases` mutated bodies, up to `perConnection` per connection. */
export async function fstrmOverSocket(
  rand: Rand,
  cases: number,
  perConnection: number,
): Promise<SocketTally> {
  let sentinelsSeen = 0;
  const server = new FrameStreamServer({
    tcp: { host: '127.0.0.1', port: 0 },
    sink: {
      onFrame: (buf, start, end) => {
        if (end - start === SENTINEL.length && SENTINEL.equals(buf.subarray(start, end))) sentinelsSeen++;
      },
    },
    log: silent,
    maxDataFrameSize: FUZZ_MAX_DATA_FRAME,
    maxConnections: 16,
  });
  const { tcpPort } = await server.listen();
  const seeds = fstrmBodySeeds();
  const tally: SocketTally = { cases: 0, connections: 0, outcomes: {}, mismatches: [] };
  const start = encodeControlFrame(ControlType.START, [DNSTAP_CONTENT_TYPE]);
  const stop = encodeControlFrame(ControlType.STOP);
  const sentinel = encodeDataFrame(SENTINEL);
  try {
    while (tally.cases < cases) {
      // Build one connection's bytes and the model's verdict for it.
      const model = new FstrmModel();
      model.write(start);
      const parts: Buffer[] = [start];
      let fatal: string | null = null;
      // Half the connections carry bad items in resyncable positions only (garbage payloads,
      // oversized frames whole on the wire): the sentinel after each must arrive. The other
      // half any mutation, framing included: Frame Streams has no sync marker, so a bad
      // length desyncs the rest of the connection until a check fails (fewer cases each).
      const framed = rand() < 0.5;
      const k = Math.min(framed ? perConnection : 20, cases - tally.cases);
      for (let i = 0; i < k && fatal === null; i++) {
        const bytes = framed ? framedGarbage(rand) : mutate(rand, seeds).bytes;
        const piece = Buffer.concat([bytes, sentinel]);
        const before = model.sentinels;
        parts.push(piece);
        tally.cases++;
        try {
          model.write(piece);
          const inSync = model.sentinels > before && model.lastWasSentinel;
          if (framed && !inSync && tally.mismatches.length < 20)
            tally.mismatches.push(
              `fstrm case ${tally.cases}: the sentinel after resyncable bad frames was not decoded`,
            );
          bump(tally.outcomes, inSync ? (framed ? 'in-sync-after-bad-frames' : 'in-sync') : 'desync-pending');
        } catch (err) {
          if (!isFramestreamError(err)) throw err;
          fatal = err.code;
          bump(tally.outcomes, `rejected:${err.code}`);
        }
      }
      let expectReason: string;
      if (fatal !== null) expectReason = 'protocol-error';
      else {
        model.write(stop);
        parts.push(stop);
        if (model.session.state === 'finished') expectReason = 'finished';
        else {
          try {
            model.decoder.end();
            expectReason = 'peer-closed';
          } catch {
            expectReason = 'truncated';
          }
        }
      }
      const before = {
        frames: server.stats.framesIn,
        oversize: server.stats.oversizeFrames,
        errors: Object.values(server.stats.protocolErrors).reduce((s, v) => s + v, 0),
        sentinels: sentinelsSeen,
        reasons: { ...server.stats.closedByReason },
      };
      const closed = new Promise<string>((resolve) =>
        server.once('connection-closed', (_c, reason) => resolve(reason)),
      );
      const socket = net.connect(tcpPort!, '127.0.0.1');
      socket.on('error', () => {}); // the server may reset us after a protocol error
      socket.on('data', () => {});
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('error', reject);
      });
      writeAll(socket, chunks(rand, Buffer.concat(parts)));
      socket.end();
      const reason = await withTimeout(closed, 10_000, 'fstrm connection did not close');
      socket.destroy();
      tally.connections++;
      const errors = Object.values(server.stats.protocolErrors).reduce((s, v) => s + v, 0);
      const expect = (what: string, got: number, want: number) => {
        if (got !== want && tally.mismatches.length < 20)
          tally.mismatches.push(`fstrm connection ${tally.connections}: ${what} ${got}, model ${want}`);
      };
      if (reason !== expectReason && tally.mismatches.length < 20) {
        tally.mismatches.push(
          `fstrm connection ${tally.connections}: closed ${reason}, model ${expectReason}`,
        );
      }
      expect('data frames', server.stats.framesIn - before.frames, model.dataCalls);
      expect('oversize frames', server.stats.oversizeFrames - before.oversize, model.oversizeCalls);
      expect('protocol errors', errors - before.errors, fatal === null ? 0 : 1);
      expect('sentinels', sentinelsSeen - before.sentinels, model.sentinels);
      bump(tally.outcomes, `closed:${reason}`);
    }
  } finally {
    await server.close(0);
  }
  return tally;
}

/** The link protocol over TCP: one mutated agent stream per connection, against an enricher. */
export async function linkOverSocket(
  rand: Rand,
  cases: number,
  seeds: Seed[],
  token: string,
): Promise<SocketTally> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fuzz-link-'));
  const enricher = new Enricher({
    id: 'enr-fuzz',
    output: { outputDir: dir, maxAgeMs: 60_000 },
    listen: { host: '127.0.0.1', port: 0 },
    metricsListen: null,
    drainTimeoutMs: 1000,
    authToken: Buffer.from(token),
    link: { maxFrameBytes: 1 << 20, handshakeTimeoutMs: 5000 },
    log: silent,
  });
  const { link: port } = await enricher.start();
  const stats = enricher.link!.stats;
  const tally: SocketTally = { cases: 0, connections: 0, outcomes: {}, mismatches: [] };
  const sum = (m: Map<string, number>) => [...m.values()].reduce((s, v) => s + v, 0);
  try {
    // A few connections at a time: cases are independent.
    const parallel = 4;
    const one = async (): Promise<void> => {
      const { bytes } = mutate(rand, seeds);
      const parts = chunks(rand, Buffer.concat([bytes, LINK_TAIL]));
      const expected = linkEnricherOutcome(new LinkEnricherModel(), parts);
      tally.cases++;
      bump(tally.outcomes, expected);
      const got = await linkConversation(port, parts);
      tally.connections++;
      const mismatch = (m: string) => {
        if (tally.mismatches.length < 20)
          tally.mismatches.push(`link case ${tally.cases} (${expected}): ${m}`);
      };
      if (expected.startsWith('rejected:') && expected !== 'rejected:LINK_TRUNCATED') {
        // Fatal: Reject PROTOCOL_ERROR names the code, then the enricher closes.
        if (got.reject !== RejectCode.PROTOCOL_ERROR)
          mismatch(`got reject ${got.reject}, want PROTOCOL_ERROR`);
      } else if (expected.startsWith('refused:')) {
        if (String(got.reject) !== expected.slice(8)) mismatch(`got reject ${got.reject}`);
      } else if (expected === 'in-sync') {
        if (!got.sentinelPong) mismatch('no Pong for the sentinel Ping');
      } else if (expected === 'no-hello') {
        if (got.welcome || got.reject !== null) mismatch('answered a Hello that never completed');
      }
      if (!got.closed) mismatch('connection not closed by the enricher');
    };
    const before = { errors: sum(stats.protocolErrors) };
    while (tally.cases < cases) {
      const n = Math.min(parallel, cases - tally.cases);
      await Promise.all(Array.from({ length: n }, () => one()));
    }
    const count = (prefix: string) =>
      Object.entries(tally.outcomes)
        .filter(([k]) => k.startsWith(prefix))
        .reduce((s, [, v]) => s + v, 0);
    // Errors after the agent's Goodbye are counted or not depending on whether the enricher
    // had already closed (its acks pending or not): a range.
    const min = count('rejected:');
    const max = min + count('after-goodbye:');
    const gotErrors = sum(stats.protocolErrors) - before.errors;
    if (gotErrors < min || gotErrors > max)
      tally.mismatches.push(`link protocolErrors counted ${gotErrors}, model ${min}..${max}`);
  } finally {
    await enricher.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return tally;
}

interface Conversation {
  welcome: boolean;
  reject: number | null;
  sentinelPong: boolean;
  closed: boolean;
}

/** Sends the agent bytes, reads the enricher's frames until it closes (bounded in time). */
function linkConversation(port: number, parts: Buffer[]): Promise<Conversation> {
  return new Promise((resolve) => {
    const got: Conversation = { welcome: false, reject: null, sentinelPong: false, closed: false };
    const socket = net.connect(port, '127.0.0.1');
    const decoder = new LinkFrameDecoder({
      accept: Accepts.ANY,
      onFrame: (type, buf, start, end) => {
        if (type === MessageType.WELCOME) got.welcome = true;
        else if (type === MessageType.REJECT)
          got.reject = decodeControl(MessageType.REJECT, buf, start, end).code;
        else if (type === MessageType.PONG)
          got.sentinelPong ||= decodeControl(MessageType.PONG, buf, start, end).nonce === LINK_SENTINEL_NONCE;
      },
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      socket.destroy();
    }, 8000);
    socket.on('data', (c) => {
      try {
        decoder.write(c);
      } catch {
        socket.destroy();
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      got.closed = !timedOut;
      resolve(got);
    });
    socket.on('connect', () => {
      for (const p of parts) socket.write(p);
      // Half-close: the enricher answers what it read, then closes.
      socket.end();
    });
  });
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<T>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
