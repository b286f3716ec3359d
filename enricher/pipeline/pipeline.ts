// RecordPipeline: dnstap frame -> decoded fields -> DNS message -> policy lookups -> CSV row
// -> sink. One instance per output writer; everything it touches per record is reused.
import { bump } from '../../common/counts';
import { DnsView, tryParseDnsMessage as tryParseDnsMessageExport } from '../../proto/dns/index';
import {
  ABSENT as ABSENTExport,
  DnstapDecodeError,
  DnstapView,
  decodeDnstap as decodeDnstapExport,
  isResponseType as isResponseTypeExport,
} from '../../proto/dnstap/index';
import { COLUMNS, type ColumnName } from '../output/csv';
import type { NetworkRule, Policy } from '../policy/index';
import { TruncatedCounters } from './dns-columns';
import { DnsTrafficCounters } from './dns-traffic';
import {
  type DnsChoice,
  MAX_ROW_BYTES,
  OutOfRangeCounters,
  RowEncoder,
  type RowEncoderOptions,
  type RowSource,
} from './row-encoder';

// Hot-path imports as module constants: through an index.ts re-export, CommonJS output reads
// every use via a getter on the index's `exports` (a generic LoadIC: ~5% of process()).
const ABSENT: number = ABSENTExport;
const decodeDnstap = decodeDnstapExport;
const isResponseType = isResponseTypeExport;
const tryParseDnsMessage = tryParseDnsMessageExport;

/**
 * Where rows go, written in place: beginRow(room) gives an offset into rowTarget with `room`
 * bytes free, endRow(end) ends the row. Backpressure is part of the contract: a sink takes
 * every row it is given, but endRow() returns false once it is above its high-water mark, and
 * `full` stays true until whenDrained() resolves. Whoever feeds the pipeline must then stop
 * (wait, pause its socket, or drop visibly) instead of queueing without bound.
 */
export interface RowSink {
  beginRow(room: number): number;
  readonly rowTarget: Buffer;
  /** False when the sink is above its high-water mark: stop until whenDrained(). */
  endRow(end: number): boolean;
  readonly full: boolean;
  /** Resolves at once when not full, else when drained; rejects with the sink's failure. */
  whenDrained(): Promise<void>;
  /**
   * Present on a sink partitioned by tenant (--partition-by tenant): called before each
   * beginRow() with the tenant of the matched policy network, or null when none matched.
   */
  selectTenant?(tenant: string | null): void;
}

/** A RowSink that also says when rows are durable: what acknowledgements wait for. */
export interface DurableRowSink extends RowSink {
  /** Resolves once every row ended before the call is durable. */
  flush(): Promise<void>;
}

/**
 * Sees every record after the policy lookups (hourly aggregates, enricher/aggregates/): the
 * decoded frame, the chosen DNS message (headerOk: its 12-byte header was read), the network
 * rule the client address matched, and the batch's source (sample rate). Must not keep views.
 */
export interface RecordObserver {
  observe(v: DnstapView, d: DnsView, headerOk: boolean, network: NetworkRule | null, src: RowSource): void;
}

/** Plain counters, read by the metrics collector on scrape (no prom-client calls per record). */
export class PipelineCounters {
  frames = 0;
  frameBytes = 0;
  rows = 0;
  rowBytes = 0;
  /** Frames dropped because the dnstap payload could not be decoded, by error code. */
  readonly dnstapErrors = new Map<string, number>();
  /** DNS messages that did not parse (the row is still written), by error code. */
  readonly dnsErrors = new Map<string, number>();
  /** Dnstap payloads without a Message (nothing to output), dropped. */
  noMessage = 0;
  /** Records with no DNS message at all (row written without DNS fields). */
  noDnsMessage = 0;
  /** Typed fields written empty because the value lies outside the column's SQL type. */
  readonly outOfRange = new OutOfRangeCounters();
  /** Fields cut to their bound (identity, answers, dnstap policy texts, query_zone), by column. */
  readonly truncated = new TruncatedCounters();
  /** Records taken with --rows off: counted in the aggregates, no row written. */
  aggregatedOnly = 0;
  /** Responses by rcode, queries by message type and qtype class (bounded labels). */
  readonly traffic = new DnsTrafficCounters();
}

/** What a row holds: the encoder's options, and the column selection (--columns). */
export interface RowOptions extends RowEncoderOptions {
  /** A validated selection in schema order (output/csv.ts parseColumnList); undefined = all. */
  columns?: readonly ColumnName[];
}

export class RecordPipeline {
  readonly counters = new PipelineCounters();
  private readonly view = new DnstapView();
  private readonly dns: DnsChoice = { view: new DnsView(), ok: false, headerOk: false, size: -1 };
  private readonly encoder: RowEncoder;
  /** With --columns: 1 per kept column index, and the full row is encoded into `scratch` first. */
  private readonly keep: Uint8Array | null = null;
  private readonly scratch: Buffer | null = null;
  /** The sink wants each row's tenant (--partition-by tenant). */
  private readonly partitioned: boolean;
  /** Hourly aggregates; null when off. */
  observer: RecordObserver | null = null;

  constructor(
    /** null: no rows are written (--rows off); records still reach the observer. */
    private readonly sink: RowSink | null,
    enricherId: string,
    /** Returns the policy in force; read once per record so a swap takes effect at once. */
    private readonly policy: () => Policy | null,
    options: RowOptions = {},
  ) {
    this.encoder = new RowEncoder(enricherId, this.counters.outOfRange, this.counters.truncated, options);
    this.partitioned = typeof sink?.selectTenant === 'function';
    if (options.columns !== undefined && options.columns.length < COLUMNS.length) {
      this.keep = new Uint8Array(COLUMNS.length);
      for (const c of options.columns) this.keep[COLUMNS.indexOf(c)] = 1;
      this.scratch = Buffer.alloc(MAX_ROW_BYTES);
    }
  }

  get identityTruncated(): number {
    return this.encoder.identityTruncated;
  }

  /** Processes one dnstap payload buf[start..end). Returns false when the frame was dropped (counted). */
  process(buf: Buffer, start: number, end: number, src: RowSource, seq: number, index: number): boolean {
    const c = this.counters;
    c.frames++;
    c.frameBytes += end - start;
    const v = this.view;
    try {
      decodeDnstap(buf, start, end, v);
    } catch (err) {
      if (!(err instanceof DnstapDecodeError)) throw err;
      bump(c.dnstapErrors, err.code);
      return false;
    }
    if (!v.hasMessage) {
      c.noMessage++;
      return false;
    }
    // DNS fields come from the response for *_RESPONSE types, the query otherwise, else the other one.
    let off = ABSENT;
    let len = 0;
    const preferResponse = isResponseType(v.type);
    if (preferResponse ? v.responseMessageOff !== ABSENT : v.queryMessageOff === ABSENT) {
      off = v.responseMessageOff;
      len = v.responseMessageLen;
    } else {
      off = v.queryMessageOff;
      len = v.queryMessageLen;
    }
    const dns = this.dns;
    const dv = dns.view;
    if (off === ABSENT) {
      dv.reset(); // (the parser resets it otherwise)
      dns.ok = false;
      dns.headerOk = false;
      dns.size = -1;
      c.noDnsMessage++;
    } else {
      dns.size = len;
      dns.headerOk = len >= 12;
      // The code-returning parser: a flood of malformed messages must not cost a throw each.
      const code = tryParseDnsMessage(buf, off, off + len, dv);
      dns.ok = code === null;
      if (code !== null) bump(c.dnsErrors, code);
      if (preferResponse) {
        if (dns.headerOk && off === v.responseMessageOff) c.traffic.countResponse(dv.rcode);
      } else if (dv.hasQuestion && off === v.queryMessageOff) c.traffic.countQuery(v.type, dv.qtype);
    }
    const policy = this.policy();
    const domain =
      policy !== null && dv.hasQuestion
        ? policy.lookupDomain(dv.name, dv.nameLen, dv.labelStarts, dv.labelCount)
        : null;
    const network =
      policy !== null && v.queryAddressOff !== ABSENT
        ? policy.lookupNetwork(buf, v.queryAddressOff, v.queryAddressLen)
        : null;
    if (this.observer !== null) this.observer.observe(v, dv, dns.headerOk, network, src);
    const sink = this.sink;
    if (sink === null) {
      c.aggregatedOnly++;
      return true;
    }
    if (this.partitioned) sink.selectTenant!(network === null ? null : network.tenant);
    const at = sink.beginRow(MAX_ROW_BYTES);
    let rowEnd: number;
    if (this.keep === null)
      rowEnd = this.encoder.encode(v, dns, domain, network, src, seq, index, sink.rowTarget, at);
    else {
      const s = this.scratch!;
      const end = this.encoder.encode(v, dns, domain, network, src, seq, index, s, 0);
      rowEnd = projectRow(s, end, this.keep, sink.rowTarget, at);
    }
    sink.endRow(rowEnd);
    c.rows++;
    c.rowBytes += rowEnd - at;
    return true;
  }
}

/**
 * Copies the kept fields of the CSV row src[0, end) (CRLF-terminated, as the encoder writes
 * it) to dst[at..] with their commas and the CRLF; returns the end. The encoder quotes whole
 * fields only, so a field is either unquoted (ends at the next comma) or starts with a quote
 * (ends at the quote not followed by another).
 */
export function projectRow(src: Buffer, end: number, keep: Uint8Array, dst: Buffer, at: number): number {
  const stop = end - 2; // before CRLF
  let p = at;
  let i = 0;
  let first = true;
  for (let col = 0; col < keep.length && i <= stop; col++) {
    const start = i;
    if (i < stop && src[i] === 0x22) {
      for (i++; i < stop; i++) {
        if (src[i] === 0x22) {
          if (src[i + 1] === 0x22) i++;
          else {
            i++;
            break;
          }
        }
      }
    } else while (i < stop && src[i] !== 0x2c) i++;
    if (keep[col] === 1) {
      if (!first) dst[p++] = 0x2c;
      first = false;
      for (let k = start; k < i; k++) dst[p++] = src[k]!;
    }
    i++; // past the comma (or past stop on the last field)
  }
  dst[p++] = 0x0d;
  dst[p++] = 0x0a;
  return p;
}
