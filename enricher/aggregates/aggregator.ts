// Hourly aggregates (issue 9 step 3): per hour x tenant x policy network x enricher, the query
// and response counts, responses per rcode and queries per qtype (the bounded label sets of
// pipeline/dns-traffic.ts, "other" for the rest), unique clients as a keyed HyperLogLog and the
// top qnames as a Space-Saving summary. Fed by RecordPipeline (observe(), after the policy
// lookups) with the record's decoded fields; a record weighs its batch's sample_rate.
//
// The hour is the row's event_time hour (the response time for responses, else the query
// time); a record without a usable time counts in the hour it arrived in. Groups are keyed
// by the policy's NetworkRule object (no string per record); groups of one (tenant, network)
// made by two policy versions are merged when the hour is taken.
//
// At-least-once: `batchResent` is set by whoever feeds a batch (link/journal) before its
// records; a record of a batch that may have been counted elsewhere before adds its weight to
// the group's resent_records, so the emitted counts are >= the truth and at most resent_records
// above it.

import type { DnsView } from '../../proto/dns/index';
import { ABSENT, type DnstapView, isResponseType } from '../../proto/dnstap/index';
import { QTYPE_INDEX, QTYPE_LABELS, RCODE_INDEX, RCODE_LABELS } from '../pipeline/dns-traffic';
import type { RecordObserver } from '../pipeline/pipeline';
import { queryAddressIsClient } from '../pipeline/privacy';
import { MAX_EVENT_TIME_SEC, type RowSource } from '../pipeline/row-encoder';
import type { NetworkRule } from '../policy/index';
import { HLL_M, hllAdd, hllFromText, hllMergeInto, hllText, type KeyedClientHash } from './hll';
import { SpaceSaving, TOPK_SLOTS } from './space-saving';

export const HOUR_MS = 3_600_000;
/** Open groups per hour; records of further (tenant, network) pairs go to the overflow group. */
export const MAX_GROUPS_PER_HOUR = 10_000;
/** The network/tenant text of the overflow group. */
export const OVERFLOW = '(overflow)';

// counters layout
export const C_QUERIES = 0;
export const C_RESPONSES = 1;
export const C_RESENT = 2;
export const C_RCODE = 3;
export const C_QTYPE = C_RCODE + RCODE_LABELS.length;
export const C_COUNT = C_QTYPE + QTYPE_LABELS.length;

export class Group {
  readonly counters = new Float64Array(C_COUNT);
  readonly hll = new Uint8Array(HLL_M);
  topk = new SpaceSaving();
  /** True once a record with sample_rate > 1 counted: the counts are estimates. */
  sampled = false;

  constructor(
    readonly tenant: string,
    readonly network: string,
  ) {}

  mergeFrom(o: Group): void {
    for (let i = 0; i < C_COUNT; i++) this.counters[i]! += o.counters[i]!;
    hllMergeInto(this.hll, o.hll);
    this.sampled ||= o.sampled;
    // Space-Saving summaries merge by adding counts (errors add too); the summary keeps the largest.
    const merged = new Map<string, [number, number]>();
    for (const ss of [this.topk, o.topk]) {
      for (const [n, c, e] of ss.entries()) {
        const m = merged.get(n) ?? [0, 0];
        merged.set(n, [m[0] + c, m[1] + e]);
      }
    }
    // A name missing from one summary may have up to that summary's bound there.
    const bounds = this.topk.bound + o.topk.bound;
    const list = [...merged.entries()].map(([n, [c, e]]): [string, number, number] => [n, c, e]);
    list.sort((a, b) => b[1] - a[1]);
    // More than TOPK_SLOTS names: the ones dropped had at most the smallest kept count.
    const dropped = list.length > TOPK_SLOTS ? list[TOPK_SLOTS]![1] : 0;
    const ss = SpaceSaving.from(list, this.topk.skipped + o.topk.skipped, Math.max(bounds, dropped));
    // Entries in only one summary get the other's bound as error (the name may be there, uncounted).
    for (let s = 0; s < ss.used; s++) ss.errors[s] = Math.min(ss.counts[s]!, ss.errors[s]! + bounds);
    this.topk = ss;
  }
}

/** One emitted row (before CSV). */
export interface AggregateRow {
  hourStartMs: number;
  group: Group;
}

export interface GroupState {
  tenant: string;
  network: string;
  counters: number[];
  hll: string;
  topk: [string, number, number][];
  skipped: number;
  floor: number;
  sampled: boolean;
}

export class Aggregator implements RecordObserver {
  /** Set per batch by the feeder: its records may have been counted before. */
  batchResent = false;
  /** Records that went to the overflow group (metric). */
  overflowRecords = 0;
  records = 0;
  private readonly hours = new Map<number, Map<NetworkRule | null | string, Group>>();
  private lastHour = -1;
  private lastMap: Map<NetworkRule | null | string, Group> | null = null;

  constructor(
    private readonly clients: KeyedClientHash,
    private readonly now: () => number = Date.now,
    /** The network column's text for a policy CIDR (privacy: no more precise than the client masks). */
    private readonly networkText: (cidr: string) => string = (cidr) => cidr,
  ) {}

  get keyId(): string {
    return this.clients.keyId;
  }

  /** Hours with state, as hour start ms. */
  get openHours(): number[] {
    return [...this.hours.keys()].sort((a, b) => a - b);
  }

  observe(v: DnstapView, d: DnsView, headerOk: boolean, network: NetworkRule | null, src: RowSource): void {
    this.records++;
    const response = isResponseType(v.type);
    // The event_time rule of the row encoder.
    let sec = ABSENT;
    if (response ? v.responseTimeSec !== ABSENT : v.queryTimeSec === ABSENT) sec = v.responseTimeSec;
    else sec = v.queryTimeSec;
    const hourMs =
      sec !== ABSENT && sec <= MAX_EVENT_TIME_SEC ? Math.floor(sec / 3600) * HOUR_MS : hourOf(this.now());
    let map = this.lastMap;
    if (hourMs !== this.lastHour || map === null) {
      map = this.hours.get(hourMs) ?? null;
      if (map === null) {
        map = new Map();
        this.hours.set(hourMs, map);
      }
      this.lastHour = hourMs;
      this.lastMap = map;
    }
    let g = map.get(network);
    if (g === undefined) {
      if (map.size >= MAX_GROUPS_PER_HOUR) {
        this.overflowRecords++;
        g = map.get(OVERFLOW);
        if (g === undefined) {
          g = new Group(OVERFLOW, OVERFLOW);
          map.set(OVERFLOW, g);
        }
      } else {
        g = new Group(network?.tenant ?? '', network === null ? '' : this.networkText(network.cidr));
        map.set(network, g);
      }
    }
    const w = src.sampleRate;
    if (w > 1) g.sampled = true;
    const c = g.counters;
    if (this.batchResent) c[C_RESENT]! += w;
    if (response) {
      c[C_RESPONSES]! += w;
      if (headerOk) c[C_RCODE + RCODE_INDEX[d.rcode & 0xfff]!]! += w;
    } else {
      c[C_QUERIES]! += w;
      if (d.hasQuestion) c[C_QTYPE + QTYPE_INDEX[d.qtype & 0xffff]!]! += w;
    }
    if (d.hasQuestion) g.topk.add(d.name, d.nameLen, w);
    if (v.queryAddressOff !== ABSENT && queryAddressIsClient(v.type)) {
      const packed = this.clients.of(v.buf, v.queryAddressOff, v.queryAddressLen);
      if (packed >= 0) hllAdd(g.hll, packed);
    }
  }

  /** Removes and returns the hours closed at `nowMs` (hour end + grace passed). */
  takeClosed(nowMs: number, graceMs: number): AggregateRow[] {
    return this.take((h) => h + HOUR_MS + graceMs <= nowMs);
  }

  /** Removes and returns every hour (drain, shutdown, end of a convert). */
  takeAll(): AggregateRow[] {
    return this.take(() => true);
  }

  /** Removes and returns the given hours. */
  takeHours(hours: readonly number[]): AggregateRow[] {
    const set = new Set(hours);
    return this.take((h) => set.has(h));
  }

  private take(which: (hourMs: number) => boolean): AggregateRow[] {
    const out: AggregateRow[] = [];
    for (const h of this.openHours) {
      if (!which(h)) continue;
      const map = this.hours.get(h)!;
      this.hours.delete(h);
      const byKey = new Map<string, Group>();
      for (const g of map.values()) {
        const key = `${g.tenant}\u0000${g.network}`;
        const had = byKey.get(key);
        if (had === undefined) byKey.set(key, g);
        else had.mergeFrom(g);
      }
      const keys = [...byKey.keys()].sort();
      for (const k of keys) out.push({ hourStartMs: h, group: byKey.get(k)! });
    }
    this.lastHour = -1;
    this.lastMap = null;
    return out;
  }

  /** The open state, for the journal's snapshot. */
  snapshot(): Record<string, GroupState[]> {
    const out: Record<string, GroupState[]> = {};
    for (const [h, map] of this.hours) {
      out[String(h)] = [...map.values()].map(groupState);
    }
    return out;
  }

  /** Adds a snapshot's state (journal replay). */
  restore(state: Record<string, GroupState[]>): void {
    for (const [hs, groups] of Object.entries(state)) {
      const h = Number(hs);
      let map = this.hours.get(h);
      if (map === undefined) {
        map = new Map();
        this.hours.set(h, map);
      }
      for (const s of groups) {
        const g = new Group(s.tenant, s.network);
        g.counters.set(s.counters);
        g.hll.set(hllFromText(s.hll));
        g.topk = SpaceSaving.from(s.topk, s.skipped, s.floor);
        g.sampled = s.sampled;
        const key = `restored\u0000${s.tenant}\u0000${s.network}`;
        const had = map.get(key);
        if (had === undefined) map.set(key, g);
        else had.mergeFrom(g);
      }
    }
    this.lastHour = -1;
    this.lastMap = null;
  }
}

export function groupState(g: Group): GroupState {
  return {
    tenant: g.tenant,
    network: g.network,
    counters: [...g.counters],
    hll: hllText(g.hll),
    topk: g.topk.entries(),
    skipped: g.topk.skipped,
    floor: g.topk.floor,
    sampled: g.sampled,
  };
}

/** The state of taken rows (to put them back after a failed publish). */
export function stateOf(rows: readonly AggregateRow[]): Record<string, GroupState[]> {
  const out: Record<string, GroupState[]> = {};
  for (const { hourStartMs, group } of rows) (out[String(hourStartMs)] ??= []).push(groupState(group));
  return out;
}

export function hourOf(ms: number): number {
  return Math.floor(ms / HOUR_MS) * HOUR_MS;
}
