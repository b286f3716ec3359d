// DNS traffic counters for the dashboard (issue 9 step 5): responses by rcode, queries by
// qtype class and message type. Label sets are bounded by construction - a fixed list of
// rcodes and qtype classes plus "other", the dnstap message types plus "other" - and never
// carry a domain or a client. Plain typed arrays bumped per record (two array increments);
// the metrics collector turns them into series on scrape.

import { QTYPES, RCODES_TABLE } from '../../proto/dns/index';
import { MESSAGE_TYPE_NAMES } from '../../proto/dnstap/index';

/** RCODE label values; an rcode outside them counts as "other". */
export const RCODE_LABELS: readonly string[] = [
  'NOERROR',
  'FORMERR',
  'SERVFAIL',
  'NXDOMAIN',
  'NOTIMP',
  'REFUSED',
  'YXDOMAIN',
  'YXRRSET',
  'NXRRSET',
  'NOTAUTH',
  'NOTZONE',
  'BADVERS',
  'BADCOOKIE',
  'other',
];

/** qtype classes: the types operators chart, each its own class; the rest is "other". */
export const QTYPE_LABELS: readonly string[] = [
  'A',
  'AAAA',
  'CNAME',
  'HTTPS',
  'SVCB',
  'MX',
  'TXT',
  'PTR',
  'NS',
  'SOA',
  'SRV',
  'DS',
  'DNSKEY',
  'CAA',
  'NAPTR',
  'ANY',
  'AXFR',
  'IXFR',
  'other',
];

/** Message type labels: dnstap.proto's names; unknown values count as "other". */
export const MESSAGE_TYPE_LABELS: readonly string[] = [...MESSAGE_TYPE_NAMES.slice(1), 'other'];

/** A mnemonic table (proto/dns): names of the registered values; others print as TYPE<n>. */
interface NameTable {
  name(n: number): string;
  knownValues(): Iterable<number>;
}

/**
 * Label index of every value below `size`. Only registered values are named (an unregistered
 * one prints as TYPE<n> / RCODE<n>, never a label), so only they are looked at: naming all
 * 65536 qtypes would cache 65536 strings, and even asking each whether it is registered took
 * ~10 ms of every enricher's and convert's start-up (an interpreted loop V8 then compiled
 * three times on the stack).
 */
function indexTable(labels: readonly string[], size: number, table: NameTable): Uint8Array {
  const t = new Uint8Array(size).fill(labels.length - 1);
  for (const n of table.knownValues()) {
    if (n < 0 || n >= size) continue;
    const i = labels.indexOf(table.name(n));
    if (i >= 0 && labels[i] !== 'other') t[n] = i;
  }
  return t;
}

/** RCODE_LABELS index of every rcode (aggregates use the same label sets). */
export const RCODE_INDEX = indexTable(RCODE_LABELS, 4096, RCODES_TABLE);
/** QTYPE_LABELS index of every qtype. */
export const QTYPE_INDEX = indexTable(QTYPE_LABELS, 65536, QTYPES);
const TYPE_COUNT = MESSAGE_TYPE_LABELS.length;

export class DnsTrafficCounters {
  /** Responses (*_RESPONSE records whose DNS header was read), by RCODE_LABELS index. */
  readonly responses = new Float64Array(RCODE_LABELS.length);
  /** Queries (*_QUERY records with a question), by [message type][qtype class]. */
  readonly queries = new Float64Array(TYPE_COUNT * QTYPE_LABELS.length);

  countResponse(rcode: number): void {
    this.responses[RCODE_INDEX[rcode & 0xfff]!]!++;
  }

  countQuery(messageType: number, qtype: number): void {
    const t = messageType >= 1 && messageType < TYPE_COUNT ? messageType - 1 : TYPE_COUNT - 1;
    this.queries[t * QTYPE_LABELS.length + QTYPE_INDEX[qtype & 0xffff]!]!++;
  }

  /** Non-zero series for the metrics collector. */
  responseSeries(): [{ rcode: string }, number][] {
    const out: [{ rcode: string }, number][] = [];
    this.responses.forEach((v, i) => {
      if (v > 0) out.push([{ rcode: RCODE_LABELS[i]! }, v]);
    });
    return out;
  }

  querySeries(): [{ message_type: string; qtype: string }, number][] {
    const out: [{ message_type: string; qtype: string }, number][] = [];
    const n = QTYPE_LABELS.length;
    this.queries.forEach((v, i) => {
      if (v > 0)
        out.push([{ message_type: MESSAGE_TYPE_LABELS[Math.floor(i / n)]!, qtype: QTYPE_LABELS[i % n]! }, v]);
    });
    return out;
  }
}
