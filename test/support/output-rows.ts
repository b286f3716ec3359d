// Test-only helpers for the CSV chunk output: an independent row builder (plain string code,
// not the production byte writers), readers that parse chunks back with fast-csv and DuckDB,
// and a directory lister.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { DuckDBInstance } from '@duckdb/node-api';
import { parseString } from 'fast-csv';
import { COLUMN_TYPES, COLUMNS } from '../../enricher/output/csv';

export const EVENT_TIME = '2026-11-22T03:18:39.123456789Z';

function quote(v: string): string {
  // A backslash is quoted too: Snowflake's default ESCAPE_UNENCLOSED_FIELD is '\\'.
  return /[",\r\n\\]/.test(v) ? `"${v.split('"').join('""')}"` : v;
}

/** Values of a realistic ~250-byte row; `id` becomes record_id. */
export function rowValues(id: string, over: Partial<Record<string, string>> = {}): string[] {
  const base: Record<string, string> = {
    record_id: id,
    event_time: EVENT_TIME,
    message_type: 'CLIENT_RESPONSE',
    identity: 'resolver-7.dns.svc',
    protocol: 'UDP',
    family: 'INET',
    query_address: '10.12.4.77',
    query_port: '53211',
    response_address: '10.0.0.53',
    response_port: '53',
    qname: 'www.example.com',
    qtype: 'AAAA',
    qclass: 'IN',
    rcode: 'NOERROR',
    dns_id: '4242',
    answer_count: '2',
    message_size: '112',
    latency_us: '1532',
    ecs: '',
    tenant: 'tenant-a',
    policy_category: 'ads',
    policy_action: 'block',
    matched_domain: 'example.com',
    sample_rate: '1',
    agent_id: 'agent-node-3',
    enricher_id: 'enricher-0',
    flags: 'qr rd ra',
    opcode: 'QUERY',
    edns_udp_size: '1232',
    edns_do: 'true',
    answers: 'CNAME www.example.net;AAAA 2001:db8::1;AAAA 2001:db8::2',
    dnstap_policy_type: 'RPZ',
    dnstap_policy_rule: 'www.example.com.rpz.local',
    dnstap_policy_action: 'NXDOMAIN',
    dnstap_policy_match: 'QNAME',
    dnstap_policy_value: 'www.example.com',
    query_zone: '',
    client_key_id: '',
  };
  return COLUMNS.map((c) => over[c] ?? base[c]!);
}

export function buildRow(values: readonly string[]): Buffer {
  return Buffer.from(values.map(quote).join(',') + '\r\n', 'utf8');
}

export function row(i: number, over: Partial<Record<string, string>> = {}): Buffer {
  return buildRow(rowValues(`r-${String(i).padStart(8, '0')}`, over));
}

interface ZstdSync {
  zstdDecompressSync(data: Buffer): Buffer;
}

export function readChunkText(file: string): string {
  const raw = fs.readFileSync(file);
  // Node's zstd straight (not the production wrapper); @types/node 20 does not declare it.
  if (file.endsWith('.zst')) return (zlib as unknown as ZstdSync).zstdDecompressSync(raw).toString('utf8');
  return (file.endsWith('.gz') ? zlib.gunzipSync(raw) : raw).toString('utf8');
}

/** Parses a chunk with fast-csv (headers on); rejects on malformed CSV. */
export function parseChunk(file: string): Promise<Record<string, string>[]> {
  return parseCsvText(readChunkText(file));
}

export function parseCsvText(text: string): Promise<Record<string, string>[]> {
  return new Promise((resolve, reject) => {
    const rows: Record<string, string>[] = [];
    parseString(text, { headers: true, strictColumnHandling: true })
      .on('data', (r: Record<string, string>) => rows.push(r))
      .on('data-invalid', (r: unknown) => reject(new Error(`invalid row ${JSON.stringify(r)}`)))
      .on('error', reject)
      .on('end', () => resolve(rows));
  });
}

/** Every file under `dir`, relative, sorted. */
export function listFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const r = rel === '' ? e.name : path.join(rel, e.name);
      if (e.isDirectory()) walk(r);
      else out.push(r);
    }
  };
  walk('');
  return out.sort();
}

export function finalFiles(dir: string): string[] {
  return listFiles(dir).filter((f) => !f.startsWith('_partial') && !f.startsWith('aggregates/'));
}

/** The read_csv column spec built from COLUMN_TYPES, as the shipped SQL would. */
export function duckdbColumns(): string {
  return `{${COLUMNS.map((c) => `'${c}': '${COLUMN_TYPES[c].duckdb}'`).join(', ')}}`;
}

/** Runs `select` over read_csv of the given chunk files; returns JSON-friendly rows. */
export async function duckdbQuery(files: string[], select: string): Promise<Record<string, unknown>[]> {
  // Off-line: never install or load an extension from the network.
  const db = await DuckDBInstance.create(':memory:', {
    autoinstall_known_extensions: 'false',
    autoload_known_extensions: 'false',
  });
  try {
    const conn = await db.connect();
    const list = files.map((f) => `'${f.split("'").join("''")}'`).join(', ');
    // allow_quoted_nulls = false: "" is an empty string, an empty field NULL, as in the
    // Snowflake file format (EMPTY_FIELD_AS_NULL with FIELD_OPTIONALLY_ENCLOSED_BY).
    const source =
      `read_csv([${list}], header = true, auto_detect = false, delim = ',', quote = '"', escape = '"', ` +
      `allow_quoted_nulls = false, columns = ${duckdbColumns()})`;
    const reader = await conn.runAndReadAll(select.replace('$SOURCE', source));
    const rows = reader.getRowObjectsJson() as Record<string, unknown>[];
    conn.closeSync();
    return rows;
  } finally {
    db.closeSync();
  }
}
