// The aggregate files' CSV (README "Hourly aggregates"; sql/schema/06-aggregates.sql is the
// table): one row per hour x tenant x network of one emission, same dialect as the row chunks
// (SNOWTAP_CSV: RFC 4180, CRLF, header row, UTF-8, empty = NULL).

import { escapeTextString } from '../output/text-escape';
import { QTYPE_LABELS, RCODE_LABELS } from '../pipeline/dns-traffic';
import { type AggregateRow, C_QTYPE, C_QUERIES, C_RCODE, C_RESENT, C_RESPONSES } from './aggregator';
import { HLL_RSE, hllEstimate, hllText } from './hll';

function columnName(prefix: string, label: string): string {
  return `${prefix}_${label.toLowerCase()}`;
}

export const RCODE_COLUMNS: readonly string[] = RCODE_LABELS.map((l) => columnName('rcode', l));
export const QTYPE_COLUMNS: readonly string[] = QTYPE_LABELS.map((l) => columnName('qtype', l));

/** Column order of an aggregate file (and of SNOWTAP_AGGREGATES_RAW's data columns). */
export const AGG_COLUMNS: readonly string[] = [
  'emission_id',
  'hour_start',
  'tenant',
  'network',
  'enricher_id',
  'queries',
  'responses',
  'resent_records',
  'estimated',
  ...RCODE_COLUMNS,
  ...QTYPE_COLUMNS,
  'clients_key_id',
  'clients_hll',
  'clients_estimate',
  'clients_rse',
  'top_qnames',
  'top_qnames_bound',
  'top_qnames_skipped',
];

/** Snowflake type of every column (the SQL test compares them with the table). */
export function aggColumnType(name: string): string {
  if (name === 'hour_start') return 'TIMESTAMP_NTZ(9)';
  if (name === 'estimated') return 'BOOLEAN';
  if (name === 'clients_estimate' || name === 'clients_rse') return 'FLOAT';
  if (
    name === 'queries' ||
    name === 'responses' ||
    name === 'resent_records' ||
    name === 'top_qnames_bound' ||
    name === 'top_qnames_skipped' ||
    name.startsWith('rcode_') ||
    name.startsWith('qtype_')
  )
    return 'NUMBER(38, 0)';
  return 'VARCHAR';
}

export const AGG_HEADER = `${AGG_COLUMNS.join(',')}\r\n`;

function field(s: string): string {
  return /[",\r\n\\]/.test(s) || s === '' ? (s === '' ? '' : `"${s.replace(/"/g, '""')}"`) : s;
}

/** 2026-01-01T05:00:00.000000000Z: SNOWTAP_CSV's TIMESTAMP_FORMAT. */
export function hourText(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19)}.000000000Z`;
}

export function aggregateCsv(
  rows: readonly AggregateRow[],
  emissionId: string,
  enricherId: string,
  keyId: string,
): string {
  let out = AGG_HEADER;
  for (const { hourStartMs, group: g } of rows) {
    const c = g.counters;
    const f: string[] = [
      field(emissionId),
      hourText(hourStartMs),
      field(escapeTextString(g.tenant)),
      field(g.network),
      field(enricherId),
      String(Math.round(c[C_QUERIES]!)),
      String(Math.round(c[C_RESPONSES]!)),
      String(Math.round(c[C_RESENT]!)),
      g.sampled ? 'TRUE' : 'FALSE',
    ];
    for (let i = 0; i < RCODE_LABELS.length; i++) f.push(String(c[C_RCODE + i]!));
    for (let i = 0; i < QTYPE_LABELS.length; i++) f.push(String(c[C_QTYPE + i]!));
    f.push(field(keyId), hllText(g.hll), String(Math.round(hllEstimate(g.hll))), HLL_RSE.toFixed(6));
    f.push(field(JSON.stringify(g.topk.entries())), String(g.topk.bound), String(g.topk.skipped));
    out += `${f.join(',')}\r\n`;
  }
  return out;
}
