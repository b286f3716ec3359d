// The per-record hot path: one decoded dnstap frame (+ its parsed DNS message and policy
// matches) becomes one RFC 4180 CSV row, written byte by byte into a reused buffer.
// Column order is the README "Output: CSV chunks" contract (see enricher/output/csv.ts COLUMNS).

import type { DnsView } from '../../proto/dns/index';
import {
  NAME_BUF_SIZE,
  qclassBytes as qclassBytesExport,
  qtypeBytes as qtypeBytesExport,
  rcodeBytes as rcodeBytesExport,
  writeEcsText as writeEcsTextExport,
} from '../../proto/dns/index';
import {
  ABSENT as ABSENTExport,
  type DnstapView,
  isResponseType as isResponseTypeExport,
  MESSAGE_TYPE_NAMES,
  SOCKET_FAMILY_NAMES,
  SOCKET_PROTOCOL_NAMES,
} from '../../proto/dnstap/index';
import {
  writeIpText as writeIpTextExport,
  writeIpv4TextWords as writeIpv4TextWordsExport,
} from '../../proto/net/index';
import { csvFieldNeedsQuoting, ROW_TERMINATOR, writeCsvBytesField, writeCsvField } from '../output/csv';
import { escapeTextBytes, escapeTextString } from '../output/text-escape';
import type { DomainRule, NetworkRule } from '../policy/index';
import {
  dataViewOf,
  encodeNames,
  TimestampWriter,
  WordTable,
  wordsOf,
  writeBytes,
  writeInt,
  writeUint,
  writeUintWords,
  writeWords,
} from './bytes';
import { DNS_COLUMNS_MAX_BYTES, DnsColumnsWriter, TruncatedCounters } from './dns-columns';
import {
  ClientMask,
  type PrivacyOptions,
  queryAddressIsClient as queryAddressIsClientExport,
} from './privacy';
import type { Pseudonymizer } from './pseudonym';

// Hot-path imports as module constants: through an index.ts re-export, CommonJS output reads
// every use via a getter on the index's `exports` (`ABSENT` alone was ~2.5% of a row's CPU).
const ABSENT: number = ABSENTExport;
const isResponseType = isResponseTypeExport;
const writeIpText = writeIpTextExport;
const writeIpv4TextWords = writeIpv4TextWordsExport;
const qtypeBytes = qtypeBytesExport;
const qclassBytes = qclassBytesExport;
const rcodeBytes = rcodeBytesExport;
const writeEcsText = writeEcsTextExport;
const queryAddressIsClient = queryAddressIsClientExport;

/** Identity/version strings longer than this are cut (a hostile producer could send 1 MiB). */
export const MAX_IDENTITY_BYTES = 1024;
/**
 * Bound on one row's bytes: fixed fields + escaped qname (x2 for quoting) + identity (x4 for
 * `\xHH`, + 2 quotes) + four policy text fields (each <= 1024 characters; at most 6 bytes
 * each as `\uHHHH`, or 2 as a doubled quote) - about 32 KiB at worst - plus the appended DNS
 * columns (DNS_COLUMNS_MAX_BYTES, ~16 KiB).
 */
export const MAX_ROW_BYTES = 64 * 1024;
if (32 * 1024 + DNS_COLUMNS_MAX_BYTES > MAX_ROW_BYTES)
  throw new Error('MAX_ROW_BYTES too small for the appended columns');

// Typed columns stay inside their SQL types (sql/schema/): a value outside is written as an
// empty field (NULL) and counted in OutOfRangeCounters, never as text the load would reject.
/** 9999-12-31T23:59:59Z: the table's TIMESTAMP_FORMAT has a four-digit year (Date would write +010000-...). */
export const MAX_EVENT_TIME_SEC = 253_402_300_799;
export const MAX_PORT = 65_535;
/** latency_us is a BIGINT; beyond 2^53 a double no longer holds every microsecond exactly. */
export const MAX_LATENCY_US = Number.MAX_SAFE_INTEGER;

/** Fields left empty because the value lies outside the column's type, by column. */
export class OutOfRangeCounters {
  event_time = 0;
  latency_us = 0;
  query_port = 0;
  response_port = 0;
}

function timeInRange(sec: number, nsec: number): boolean {
  return sec <= MAX_EVENT_TIME_SEC && nsec <= 999_999_999;
}

const COMMA = 44;
const MESSAGE_TYPES = encodeNames(MESSAGE_TYPE_NAMES);
const FAMILIES = encodeNames(SOCKET_FAMILY_NAMES);
const PROTOCOLS = encodeNames(SOCKET_PROTOCOL_NAMES);
// The same as words for writeWords() (4 bytes per store; each name is followed by a comma).
/** Message types with a cached message_type..family run (see RowEncoder.newSegment). */
const SEGMENT_TYPES = MESSAGE_TYPES.length;
/** Longer runs (a long identity) are written field by field every time. */
const MAX_SEGMENT_BYTES = 256;
const QTYPE_WORDS = new WordTable(qtypeBytes, 65536);
const QCLASS_WORDS = new WordTable(qclassBytes, 65536);
const RCODE_WORDS = new WordTable(rcodeBytes, 4096);
if (NAME_BUF_SIZE % 4 !== 0) throw new Error('the qname copy reads whole words of the name buffer');
if (ROW_TERMINATOR !== '\r\n')
  throw new Error('row-encoder writes CRLF; keep it in step with ROW_TERMINATOR');

/** Where the records of a batch came from: constant for a batch, pre-encoded once. */
export class RowSource {
  /** `record_id` = <sourceId>/<seq>/<index>; the prefix is "<sourceId>/" already CSV-safe. */
  readonly idPrefix: Buffer;
  readonly idQuoted: boolean;
  readonly agentIdCsv: Buffer;

  constructor(
    readonly sourceId: string,
    readonly agentId: string,
    readonly sampleRate = 1,
  ) {
    // Source names (file names, agent ids) are outside text: Snowtap text, then CSV quoting.
    const id = escapeTextString(sourceId);
    this.idQuoted = csvFieldNeedsQuoting(id);
    this.idPrefix = Buffer.from((this.idQuoted ? id.replace(/"/g, '""') : id) + '/', 'utf8');
    const agent = escapeTextString(agentId);
    const tmp = Buffer.alloc(agent.length * 6 + 2);
    this.agentIdCsv = Buffer.from(tmp.subarray(0, writeCsvField(tmp, 0, agent)));
  }
}

/** The DNS message chosen for a record and the outcome of parsing it. */
export interface DnsChoice {
  view: DnsView;
  /** True when the chosen message parsed completely. */
  ok: boolean;
  /** True when the 12-byte header was read (id, rcode and counts are usable even if a later section failed). */
  headerOk: boolean;
  /** Message length in bytes; -1 when the frame carried no message. */
  size: number;
}

/** Per-encoder options beyond the enricher id. */
export interface RowEncoderOptions extends PrivacyOptions {
  /** Bound on the answers text (proto/dns/answers.ts ANSWERS_TEXT_MAX_BYTES). */
  answersMaxBytes?: number;
  /** Keyed pseudonyms instead of client addresses (--pseudonymize-clients). */
  pseudonymizer?: Pseudonymizer | null;
}

export class RowEncoder {
  private readonly ts = new TimestampWriter();
  private readonly enricherIdCsv: Buffer;
  // Identity/version rarely change on a stream: cache the last encoded identity.
  private lastIdentity = Buffer.alloc(0);
  private lastIdentityCsv = Buffer.alloc(0);
  /** Bumped whenever lastIdentity changes (the cached runs below name the one they hold). */
  private identityGen = 0;
  // The run "message_type,identity,protocol,family," per message type, with what it was made of.
  private readonly segWords: (Uint32Array | null)[] = new Array<Uint32Array | null>(SEGMENT_TYPES).fill(null);
  private readonly segLen = new Int32Array(SEGMENT_TYPES);
  private readonly segIdentity = new Float64Array(SEGMENT_TYPES);
  private readonly segProtocol = new Float64Array(SEGMENT_TYPES);
  private readonly segFamily = new Float64Array(SEGMENT_TYPES);
  /** lastIdentity as words (wordsOf). */
  private identityWords: Uint32Array = new Uint32Array(0);
  private readonly dnsColumns: DnsColumnsWriter;
  /** Client address truncation; null = addresses as they are. */
  private readonly mask: ClientMask | null;
  private readonly dropEcs: boolean;
  private readonly pseudo: Pseudonymizer | null;
  private readonly addrScratch = Buffer.alloc(16);
  // record_id's head and the sample_rate..enricher_id run, encoded once per source (and seq).
  private headSrc: RowSource | null = null;
  private headSeq = -1;
  private head = Buffer.alloc(128);
  private headLen = 0;
  private tailSrc: RowSource | null = null;
  private tail = Buffer.alloc(128);
  private tailLen = 0;
  private headWords: Uint32Array = new Uint32Array(0);
  private tailWords: Uint32Array = new Uint32Array(0);
  /** The last row buffer and its DataView (a new one per output block, not per row). */
  private dvTarget: Buffer | null = null;
  private dv: DataView = dataViewOf(Buffer.alloc(0));
  /** The DnsView's name buffer and its DataView. */
  private nameBuf: Buffer | null = null;
  private nameView: DataView = this.dv;

  constructor(
    enricherId: string,
    readonly outOfRange = new OutOfRangeCounters(),
    readonly truncated = new TruncatedCounters(),
    options: RowEncoderOptions = {},
  ) {
    this.mask = ClientMask.from(options);
    this.dropEcs = options.dropEcs ?? false;
    this.pseudo = options.pseudonymizer ?? null;
    this.dnsColumns = new DnsColumnsWriter(truncated, options.answersMaxBytes);
    // Validated as [A-Za-z0-9._-] by the CLI; escaped anyway, as any outside text.
    const id = escapeTextString(enricherId);
    const tmp = Buffer.alloc(id.length * 6 + 2);
    this.enricherIdCsv = Buffer.from(tmp.subarray(0, writeCsvField(tmp, 0, id)));
  }

  /** Encodes one row into b at `at` (MAX_ROW_BYTES of room) and returns where it ends. */
  encode(
    v: DnstapView,
    dns: DnsChoice,
    domain: DomainRule | null,
    network: NetworkRule | null,
    src: RowSource,
    seq: number,
    index: number,
    b: Buffer,
    at: number,
  ): number {
    const fb = v.buf;
    let p = at;
    if (b !== this.dvTarget) {
      this.dv = dataViewOf(b);
      this.dvTarget = b;
    }
    const dv = this.dv;
    // record_id: the head (['"'] <sourceId>/<seq>/) is the same for a whole batch.
    if (src !== this.headSrc || seq !== this.headSeq) this.setHead(src, seq);
    p = writeUintWords(b, dv, writeWords(dv, p, this.headWords, this.headLen), index);
    if (src.idQuoted) b[p++] = 34;
    b[p++] = COMMA;
    // event_time: the response time for responses, the query time otherwise, else the other one.
    const response = isResponseType(v.type);
    const hasQ = v.queryTimeSec !== ABSENT;
    const hasR = v.responseTimeSec !== ABSENT;
    const qNsec = v.queryTimeNsec === ABSENT ? 0 : v.queryTimeNsec;
    const rNsec = v.responseTimeNsec === ABSENT ? 0 : v.responseTimeNsec;
    const qOk = hasQ && timeInRange(v.queryTimeSec, qNsec);
    const rOk = hasR && timeInRange(v.responseTimeSec, rNsec);
    if (response ? hasR : !hasQ && hasR) {
      if (rOk) p = this.ts.write(b, p, v.responseTimeSec, rNsec, dv);
      else this.outOfRange.event_time++;
    } else if (hasQ) {
      if (qOk) p = this.ts.write(b, p, v.queryTimeSec, qNsec, dv);
      else this.outOfRange.event_time++;
    }
    b[p++] = COMMA;
    // message_type, identity, protocol, family: nearly constant on a stream, so the run
    // "type,identity,protocol,family," is cached per message type and copied as words.
    const t = v.type;
    const idKey = v.identityOff === ABSENT ? -1 : this.identityKey(fb, v.identityOff, v.identityLen);
    if (
      t >= 0 &&
      t < SEGMENT_TYPES &&
      this.segLen[t]! > 0 &&
      this.segIdentity[t] === idKey &&
      this.segProtocol[t] === v.socketProtocol &&
      this.segFamily[t] === v.socketFamily
    )
      p = writeWords(dv, p, this.segWords[t]!, this.segLen[t]!);
    else p = this.newSegment(v, idKey, b, p);
    // query_address, query_port, response_address, response_port
    if (v.queryAddressOff !== ABSENT) {
      const len = v.queryAddressLen;
      if ((this.mask !== null || this.pseudo !== null) && queryAddressIsClient(v.type) && len <= 16) {
        let src: Buffer = fb;
        let off = v.queryAddressOff;
        if (this.mask !== null) {
          this.mask.apply(fb, off, len, this.addrScratch);
          src = this.addrScratch;
          off = 0;
        }
        p = this.pseudo !== null ? this.pseudo.write(src, off, len, b, p) : writeIpText(src, off, len, b, p);
      } else if (len === 4) p = writeIpv4TextWords(fb, v.queryAddressOff, dv, p);
      else p = writeIpText(fb, v.queryAddressOff, len, b, p);
    }
    b[p++] = COMMA;
    if (v.queryPort !== ABSENT) {
      if (v.queryPort <= MAX_PORT) p = writeUintWords(b, dv, p, v.queryPort);
      else this.outOfRange.query_port++;
    }
    b[p++] = COMMA;
    if (v.responseAddressOff !== ABSENT)
      p =
        v.responseAddressLen === 4
          ? writeIpv4TextWords(fb, v.responseAddressOff, dv, p)
          : writeIpText(fb, v.responseAddressOff, v.responseAddressLen, b, p);
    b[p++] = COMMA;
    if (v.responsePort !== ABSENT) {
      if (v.responsePort <= MAX_PORT) p = writeUintWords(b, dv, p, v.responsePort);
      else this.outOfRange.response_port++;
    }
    b[p++] = COMMA;
    // qname, qtype, qclass, rcode, dns_id, answer_count, message_size
    const d = dns.view;
    if (d.hasQuestion) {
      if (d.nameCsvPlain) {
        // Nothing to quote or escape: copied four bytes at a time (the name buffer is
        // NAME_BUF_SIZE bytes, a multiple of 4, so the last word read stays inside it).
        if (d.name !== this.nameBuf) {
          this.nameView = dataViewOf(d.name);
          this.nameBuf = d.name;
        }
        const nv = this.nameView;
        const n = d.nameLen;
        for (let i = 0; i < n; i += 4) dv.setUint32(p + i, nv.getUint32(i, true), true);
        p += n;
      } else p = writeCsvBytesField(b, p, d.name, 0, d.nameLen);
      b[p++] = COMMA;
      p = QTYPE_WORDS.write(b, dv, p, d.qtype);
      b[p++] = COMMA;
      p = QCLASS_WORDS.write(b, dv, p, d.qclass);
      b[p++] = COMMA;
    } else {
      b[p++] = COMMA;
      b[p++] = COMMA;
      b[p++] = COMMA;
    }
    if (dns.headerOk) {
      p = RCODE_WORDS.write(b, dv, p, d.rcode);
      b[p++] = COMMA;
      p = writeUintWords(b, dv, p, d.id);
      b[p++] = COMMA;
      p = writeUintWords(b, dv, p, d.ancount);
    } else {
      b[p++] = COMMA;
      b[p++] = COMMA;
    }
    b[p++] = COMMA;
    if (dns.size >= 0) p = writeUintWords(b, dv, p, dns.size);
    b[p++] = COMMA;
    // latency_us: only for responses that carry both times.
    if (response && hasQ && hasR) {
      // trunc((dsec * 1e9 + dns) / 1000) without forming the ns total, which loses digits above
      // 2^53 (~104 days): the total's sign is dsec's (or dns's when dsec is 0).
      const dsec = v.responseTimeSec - v.queryTimeSec;
      const dns = rNsec - qNsec;
      const us =
        dsec * 1e6 + (dsec > 0 || (dsec === 0 && dns >= 0) ? Math.floor(dns / 1000) : Math.ceil(dns / 1000));
      if (qOk && rOk && us <= MAX_LATENCY_US && us >= -MAX_LATENCY_US) p = writeInt(b, p, us);
      else this.outOfRange.latency_us++;
    }
    b[p++] = COMMA;
    // ecs (masked in the view's own copy of the address: the lookups are done)
    if (d.hasEcs && !this.dropEcs) {
      if (this.mask !== null)
        d.ecsSourcePrefix = this.mask.applyEcs(d.ecsAddress, d.ecsFamily, d.ecsSourcePrefix);
      if (this.pseudo !== null) {
        // The subnet's pseudonym, then its prefix length: "<hex>/24".
        p = this.pseudo.write(d.ecsAddress, 0, d.ecsFamily === 1 ? 4 : 16, b, p);
        b[p++] = 47; // '/'
        p = writeUint(b, p, d.ecsSourcePrefix);
      } else p = writeEcsText(d, b, p);
    }
    b[p++] = COMMA;
    // tenant, policy_category, policy_action, matched_domain
    if (network !== null) p = writeBytes(b, p, network.csv);
    b[p++] = COMMA;
    if (domain !== null) p = writeBytes(b, p, domain.csv);
    else {
      b[p++] = COMMA;
      b[p++] = COMMA;
    }
    // ",<sample_rate>,<agent_id>,<enricher_id>": constant for a source.
    if (src !== this.tailSrc) this.setTail(src);
    p = writeWords(dv, p, this.tailWords, this.tailLen);
    // flags ... query_zone, client_key_id
    p = this.dnsColumns.write(v, dns, this.mask, this.pseudo, b, p, dv);
    b[p] = 13; // ROW_TERMINATOR "\r\n"
    b[p + 1] = 10;
    return p + 2;
  }

  /** Off the hot path: once per batch (or source). */
  private setHead(src: RowSource, seq: number): void {
    const need = src.idPrefix.length + 18;
    if (this.head.length < need) this.head = Buffer.alloc(need * 2);
    const h = this.head;
    let n = 0;
    if (src.idQuoted) h[n++] = 34;
    n += src.idPrefix.copy(h, n);
    n = writeUint(h, n, seq);
    h[n++] = 47; // '/'
    this.headLen = n;
    this.headWords = wordsOf(h.subarray(0, n));
    this.headSrc = src;
    this.headSeq = seq;
  }

  /** Off the hot path: ",<sample_rate>,<agent_id>,<enricher_id>" once per source. */
  private setTail(src: RowSource): void {
    const need = src.agentIdCsv.length + this.enricherIdCsv.length + 24;
    if (this.tail.length < need) this.tail = Buffer.alloc(need * 2);
    const t = this.tail;
    let n = 0;
    t[n++] = COMMA;
    n = writeUint(t, n, src.sampleRate);
    t[n++] = COMMA;
    n += src.agentIdCsv.copy(t, n);
    t[n++] = COMMA;
    n += this.enricherIdCsv.copy(t, n);
    this.tailLen = n;
    this.tailWords = wordsOf(t.subarray(0, n));
    this.tailSrc = src;
  }

  get identityTruncated(): number {
    return this.truncated.identity;
  }

  /**
   * Compares the identity with the last one (four bytes at a time) and returns the
   * generation of the identity in force: a new one when it changed.
   */
  private identityKey(fb: Buffer, off: number, len: number): number {
    if (len > MAX_IDENTITY_BYTES) {
      len = MAX_IDENTITY_BYTES;
      this.truncated.identity++;
    }
    const last = this.lastIdentity;
    if (last.length === len) {
      const words = this.identityWords;
      const full = len & ~3;
      let i = 0;
      for (; i < full; i += 4) {
        const o = off + i;
        const w = fb[o]! | (fb[o + 1]! << 8) | (fb[o + 2]! << 16) | (fb[o + 3]! << 24);
        if (w !== (words[i >> 2]! | 0)) break;
      }
      if (i === full) {
        while (i < len && fb[off + i] === last[i]) i++;
        if (i === len) return this.identityGen;
      }
    }
    this.newIdentity(fb, off, len);
    return this.identityGen;
  }

  /** Off the hot path: writes message_type..family (commas included) and caches the run. */
  private newSegment(v: DnstapView, idKey: number, b: Buffer, p: number): number {
    const start = p;
    const t = v.type;
    if (t !== ABSENT) p = writeEnum(b, p, MESSAGE_TYPES, t);
    b[p++] = COMMA;
    if (idKey !== -1) p = writeBytes(b, p, this.lastIdentityCsv);
    b[p++] = COMMA;
    if (v.socketProtocol !== ABSENT) p = writeEnum(b, p, PROTOCOLS, v.socketProtocol);
    b[p++] = COMMA;
    if (v.socketFamily !== ABSENT) p = writeEnum(b, p, FAMILIES, v.socketFamily);
    b[p++] = COMMA;
    if (t >= 0 && t < SEGMENT_TYPES && p - start <= MAX_SEGMENT_BYTES) {
      this.segWords[t] = wordsOf(b.subarray(start, p));
      this.segLen[t] = p - start;
      this.segIdentity[t] = idKey;
      this.segProtocol[t] = v.socketProtocol;
      this.segFamily[t] = v.socketFamily;
    } else if (t >= 0 && t < SEGMENT_TYPES) this.segLen[t] = 0;
    return p;
  }

  /** Off the hot path: a stream's identity changes rarely. */
  private newIdentity(fb: Buffer, off: number, len: number): void {
    this.lastIdentity = Buffer.from(fb.subarray(off, off + len));
    // Producers send arbitrary bytes; the CSV must be valid UTF-8 and survive any CSV format:
    // Snowtap text (output/text-escape.ts), lossless, then CSV quoting.
    const s = escapeTextBytes(fb, off, off + len);
    const tmp = Buffer.alloc(s.length * 6 + 2);
    this.lastIdentityCsv = Buffer.from(tmp.subarray(0, writeCsvField(tmp, 0, s)));
    this.identityWords = wordsOf(this.lastIdentity);
    this.identityGen++;
  }
}

/** An enum value as its name from `names`, or as its number when the table has none. */
function writeEnum(b: Buffer, p: number, names: readonly Uint8Array[], value: number): number {
  return value < names.length ? writeBytes(b, p, names[value]!) : writeUint(b, p, value);
}
