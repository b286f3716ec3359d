// Builds dnstap frames with any field content (test-only byte builders, not the production
// encoder) and runs them through the real RecordPipeline into one in-memory chunk: the exact
// bytes an enricher writes, header included. Used by the Snowflake dialect and SQL tests.
import { HEADER_BYTES } from '../../enricher/output/csv';
import { RecordPipeline, type RowOptions, type RowSink } from '../../enricher/pipeline/pipeline';
import { RowSource } from '../../enricher/pipeline/row-encoder';
import type { Policy } from '../../enricher/policy/index';
import { DnsBuilder, type EdnsOption, type Label } from './dns-builder';
import { PbBuilder } from './dnstap-builder';

export interface FrameSpec {
  identity?: Buffer;
  /** dnstap Message.type (default CLIENT_QUERY = 5). */
  type?: number;
  family?: number;
  protocol?: number;
  queryAddress?: Buffer;
  responseAddress?: Buffer;
  queryPort?: number;
  responsePort?: number;
  /** [sec, nsec]; absent when undefined. */
  queryTime?: [number | bigint, number];
  responseTime?: [number | bigint, number];
  /** Question labels (wire bytes); no DNS message at all when undefined. */
  qname?: readonly Label[];
  qtype?: number;
  qclass?: number;
  rcode?: number;
  dnsId?: number;
  ecs?: EdnsOption;
  /** Header flags bits to OR in (AA 0x0400, TC 0x0200, RD 0x0100, RA 0x0080, Z 0x0040, AD 0x0020, CD 0x0010). */
  flags?: number;
  opcode?: number;
  /** An OPT RR even without ECS: UDP size and DO bit. */
  edns?: { udpSize?: number; dnssecOk?: boolean };
  /** Answer RRs, complete (owner, fixed part, RDATA) as DnsBuilder bytes, and how many. */
  answers?: { count: number; bytes: Buffer };
  /** The DNS message as given (replaces the one built from the fields above). */
  rawDns?: Buffer;
  /** dnstap Message.policy fields (absent when undefined). */
  policy?: { type?: Buffer | string; rule?: Buffer; action?: number; match?: number; value?: Buffer };
  /** dnstap Message.query_zone (wire bytes). */
  queryZone?: Buffer;
}

function dnsMessage(s: FrameSpec): Buffer {
  if (s.rawDns !== undefined) return s.rawDns;
  const opt = s.ecs !== undefined || s.edns !== undefined;
  const b = new DnsBuilder().header({
    id: s.dnsId ?? 0x1234,
    qr: s.type !== undefined && s.type % 2 === 0,
    rcode: s.rcode ?? 0,
    qdcount: 1,
    ancount: s.answers?.count ?? 0,
    arcount: opt ? 1 : 0,
  });
  b.name(s.qname ?? [])
    .u16(s.qtype ?? 1)
    .u16(s.qclass ?? 1);
  if (s.answers !== undefined) b.raw(s.answers.bytes);
  if (opt) b.opt({ ...s.edns, options: s.ecs === undefined ? [] : [s.ecs] });
  const msg = b.build();
  // OR in the extra flag bits and the opcode.
  msg.writeUInt16BE(msg.readUInt16BE(2) | (s.flags ?? 0) | ((s.opcode ?? 0) << 11), 2);
  return msg;
}

export function dnstapFrame(s: FrameSpec): Buffer {
  const m = new PbBuilder().uint(1, s.type ?? 5);
  if (s.family !== undefined) m.uint(2, s.family);
  if (s.protocol !== undefined) m.uint(3, s.protocol);
  if (s.queryAddress !== undefined) m.len(4, s.queryAddress);
  if (s.responseAddress !== undefined) m.len(5, s.responseAddress);
  if (s.queryPort !== undefined) m.uint(6, s.queryPort);
  if (s.responsePort !== undefined) m.uint(7, s.responsePort);
  if (s.queryTime !== undefined) m.uint(8, s.queryTime[0]).fixed32(9, s.queryTime[1]);
  const response = s.type !== undefined && s.type % 2 === 0;
  if (s.qname !== undefined) m.len(response ? 14 : 10, dnsMessage(s));
  if (s.responseTime !== undefined) m.uint(12, s.responseTime[0]).fixed32(13, s.responseTime[1]);
  if (s.queryZone !== undefined) m.len(11, s.queryZone);
  if (s.policy !== undefined) {
    const p = new PbBuilder();
    if (s.policy.type !== undefined) p.len(1, s.policy.type);
    if (s.policy.rule !== undefined) p.len(2, s.policy.rule);
    if (s.policy.action !== undefined) p.uint(3, s.policy.action);
    if (s.policy.match !== undefined) p.uint(4, s.policy.match);
    if (s.policy.value !== undefined) p.len(5, s.policy.value);
    m.len(15, p);
  }
  const d = new PbBuilder();
  if (s.identity !== undefined) d.len(1, s.identity);
  return d.len(14, m).uint(15, 1).build();
}

export interface ChunkOptions {
  policy?: Policy | null;
  source?: RowSource;
  enricherId?: string;
  seq?: number;
  /** Index of the first frame (record_id = <source>/<seq>/<index>). */
  firstIndex?: number;
  /** Row options (privacy, answers bound, column selection). */
  encoder?: RowOptions;
}

/** The chunk (header + one row per frame) and the pipeline that wrote it (for its counters). */
export function encodeChunk(frames: readonly Buffer[], o: ChunkOptions = {}) {
  let buf = Buffer.alloc(1 << 20);
  let used = HEADER_BYTES.copy(buf, 0);
  const sink: RowSink = {
    get rowTarget() {
      return buf;
    },
    beginRow(room: number) {
      if (used + room > buf.length) {
        const bigger = Buffer.alloc(buf.length * 2 + room);
        buf.copy(bigger, 0, 0, used);
        buf = bigger;
      }
      return used;
    },
    endRow(end: number) {
      used = end;
      return true; // never above a high-water mark: everything stays in memory
    },
    full: false,
    whenDrained: () => Promise.resolve(),
  };
  const pipeline = new RecordPipeline(sink, o.enricherId ?? 'enricher-0', () => o.policy ?? null, o.encoder);
  const source = o.source ?? new RowSource('file-test', '');
  frames.forEach((f, i) => {
    pipeline.process(f, 0, f.length, source, o.seq ?? 1, (o.firstIndex ?? 0) + i);
  });
  return { chunk: Buffer.from(buf.subarray(0, used)), pipeline };
}
