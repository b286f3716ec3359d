// Builds dnstap frames with any field content (test-only byte builders, not the production
// encoder) and runs them through the real RecordPipeline into one in-memory chunk: the exact
// bytes an enricher writes, header included. Used by the Snowflake dialect and SQL tests.
import { HEADER_BYTES } from '../../enricher/output/csv';
import { RecordPipeline, type RowSink } from '../../enricher/pipeline/pipeline';
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
}

function dnsMessage(s: FrameSpec): Buffer {
  const b = new DnsBuilder().header({
    id: s.dnsId ?? 0x1234,
    qr: s.type !== undefined && s.type % 2 === 0,
    rcode: s.rcode ?? 0,
    qdcount: 1,
    arcount: s.ecs === undefined ? 0 : 1,
  });
  b.name(s.qname ?? [])
    .u16(s.qtype ?? 1)
    .u16(s.qclass ?? 1);
  if (s.ecs !== undefined) b.opt({ options: [s.ecs] });
  return b.build();
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
  const pipeline = new RecordPipeline(sink, o.enricherId ?? 'enricher-0', () => o.policy ?? null);
  const source = o.source ?? new RowSource('file-test', '');
  frames.forEach((f, i) => {
    pipeline.process(f, 0, f.length, source, o.seq ?? 1, (o.firstIndex ?? 0) + i);
  });
  return { chunk: Buffer.from(buf.subarray(0, used)), pipeline };
}
