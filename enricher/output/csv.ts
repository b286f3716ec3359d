// Byte-level RFC 4180 helpers for the row encoder, and the column contract of README "Output: CSV chunks".
// The row encoder writes straight into a caller-owned Buffer: no per-field strings or
// allocations on the hot path. A field is quoted iff it contains , " \ CR or LF; inner
// quotes are doubled; an empty field is written as nothing (= "not present", README "Output: CSV chunks").
//
// Why `\` too: Snowflake's CSV default is ESCAPE_UNENCLOSED_FIELD = '\\' (a backslash in an
// *unenclosed* field starts an escape, so `\.` `\\` `\DDD` in qnames would be rewritten on
// load), while ESCAPE defaults to NONE (inside quotes a backslash is literal). Quoting every
// field with a backslash keeps rows intact under the shipped format *and* under a user's own
// format left at the defaults; see sql/schema/ and test/support/snowflake-csv.ts.

/**
 * RFC 4180 ends every row with CRLF. Snowflake and DuckDB accept LF too, but CRLF keeps the
 * files strictly RFC 4180 and lets recovery recognise a row end unambiguously.
 */
export const ROW_TERMINATOR = '\r\n';
// Plain consts exported by name: CommonJS output then reads locals in the hot loops below
// instead of a property of `exports` per byte.
const CR = 0x0d;
const LF = 0x0a;
const COMMA = 0x2c;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

export { BACKSLASH, COMMA, CR, LF, QUOTE };

/** README "Output: CSV chunks" columns, in file order. Part of the external contract: append only. */
export const COLUMNS = [
  'record_id',
  'event_time',
  'message_type',
  'identity',
  'protocol',
  'family',
  'query_address',
  'query_port',
  'response_address',
  'response_port',
  'qname',
  'qtype',
  'qclass',
  'rcode',
  'dns_id',
  'answer_count',
  'message_size',
  'latency_us',
  'ecs',
  'tenant',
  'policy_category',
  'policy_action',
  'matched_domain',
  'sample_rate',
  'agent_id',
  'enricher_id',
  // Issue 9 step 4, appended in the issue's order: header, EDNS, answers, dnstap policy, zone.
  'flags',
  'opcode',
  'edns_udp_size',
  'edns_do',
  'answers',
  'dnstap_policy_type',
  'dnstap_policy_rule',
  'dnstap_policy_action',
  'dnstap_policy_match',
  'dnstap_policy_value',
  'query_zone',
  // Issue 9 step 1: the key of the client pseudonyms (--pseudonymize-clients).
  'client_key_id',
] as const;

export type ColumnName = (typeof COLUMNS)[number];
export const COLUMN_COUNT = COLUMNS.length;

/** SQL type of a column in DuckDB (off-line tests) and Snowflake (the shipped table). */
export interface ColumnType {
  readonly duckdb: string;
  readonly snowflake: string;
}

const VARCHAR: ColumnType = { duckdb: 'VARCHAR', snowflake: 'VARCHAR' };
const INTEGER: ColumnType = { duckdb: 'INTEGER', snowflake: 'INTEGER' };
const BIGINT: ColumnType = { duckdb: 'BIGINT', snowflake: 'BIGINT' };
// Written as `true` / `false`, which both engines read as BOOLEAN.
const BOOLEAN: ColumnType = { duckdb: 'BOOLEAN', snowflake: 'BOOLEAN' };
// event_time carries 9 fractional digits and a Z; both engines keep nanoseconds only in these types.
const TIMESTAMP_NS: ColumnType = { duckdb: 'TIMESTAMP_NS', snowflake: 'TIMESTAMP_NTZ(9)' };

export const COLUMN_TYPES: Readonly<Record<ColumnName, ColumnType>> = {
  record_id: VARCHAR,
  event_time: TIMESTAMP_NS,
  message_type: VARCHAR,
  identity: VARCHAR,
  protocol: VARCHAR,
  family: VARCHAR,
  query_address: VARCHAR,
  query_port: INTEGER,
  response_address: VARCHAR,
  response_port: INTEGER,
  qname: VARCHAR,
  qtype: VARCHAR,
  qclass: VARCHAR,
  rcode: VARCHAR,
  dns_id: INTEGER,
  answer_count: INTEGER,
  message_size: INTEGER,
  latency_us: BIGINT,
  ecs: VARCHAR,
  tenant: VARCHAR,
  policy_category: VARCHAR,
  policy_action: VARCHAR,
  matched_domain: VARCHAR,
  sample_rate: INTEGER,
  agent_id: VARCHAR,
  enricher_id: VARCHAR,
  flags: VARCHAR,
  opcode: VARCHAR,
  edns_udp_size: INTEGER,
  edns_do: BOOLEAN,
  answers: VARCHAR,
  dnstap_policy_type: VARCHAR,
  dnstap_policy_rule: VARCHAR,
  dnstap_policy_action: VARCHAR,
  dnstap_policy_match: VARCHAR,
  dnstap_policy_value: VARCHAR,
  query_zone: VARCHAR,
  client_key_id: VARCHAR,
};

/** The header row, CRLF-terminated, first in every chunk file. */
export const HEADER_ROW = COLUMNS.join(',') + ROW_TERMINATOR;
export const HEADER_BYTES: Buffer = Buffer.from(HEADER_ROW, 'latin1');

/** The header row of a column selection (--columns). */
export function headerBytesFor(columns: readonly ColumnName[]): Buffer {
  return Buffer.from(columns.join(',') + ROW_TERMINATOR, 'latin1');
}

/** Column the de-duplicating view keys on: a selection must keep it (at-least-once delivery). */
export const REQUIRED_COLUMN: ColumnName = 'record_id';

/**
 * Validates a column selection (--columns): known names, each once, in schema order (the
 * header is the list as given, so it must already be in file order), record_id included.
 * Throws a RangeError naming the first problem.
 */
export function parseColumnList(names: readonly string[]): ColumnName[] {
  if (names.length === 0) throw new RangeError('columns: the list is empty');
  let last = -1;
  for (const n of names) {
    const i = COLUMNS.indexOf(n as ColumnName);
    if (i < 0) {
      const near = COLUMNS.find((c) => c === n.toLowerCase().replace(/-/g, '_'));
      throw new RangeError(
        `columns: unknown column '${n}'${near ? `, use '${near}'` : ''} (known: ${COLUMNS.join(', ')})`,
      );
    }
    if (i === last) throw new RangeError(`columns: '${n}' is listed twice`);
    if (i < last) throw new RangeError(`columns: '${n}' must come before '${COLUMNS[last]}' (schema order)`);
    last = i;
  }
  if (!names.includes(REQUIRED_COLUMN))
    throw new RangeError(
      `columns: '${REQUIRED_COLUMN}' is required (the de-duplication key of at-least-once delivery)`,
    );
  return names as ColumnName[];
}

/** Upper bound of the bytes writeCsvField() may write for a string of `length` UTF-16 units. */
export function csvFieldMaxBytes(length: number): number {
  // A UTF-16 unit is at most 3 UTF-8 bytes; a doubled quote is 2; plus the enclosing quotes.
  return length * 3 + 2;
}

/** Upper bound of the bytes writeCsvBytesField() may write for `length` source bytes. */
export function csvBytesFieldMaxBytes(length: number): number {
  return length * 2 + 2;
}

export function csvFieldNeedsQuoting(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === COMMA || c === QUOTE || c === CR || c === LF || c === BACKSLASH) return true;
  }
  return false;
}

// Below this length a JS byte loop beats the native Buffer#write call.
const SHORT_FIELD = 24;

/** 1 for the bytes a field can hold as they are: ASCII other than `,` `"` `\` CR LF. */
const PLAIN_BYTE = new Uint8Array(256);
for (let b = 0; b < 0x80; b++)
  PLAIN_BYTE[b] = b === COMMA || b === QUOTE || b === CR || b === LF || b === BACKSLASH ? 0 : 1;

/**
 * Writes `s` as one UTF-8 CSV field at `pos` and returns the position after it. The caller
 * guarantees room for csvFieldMaxBytes(s.length) bytes (checked: a short write would
 * silently corrupt the row, so it throws a RangeError instead).
 */
export function writeCsvField(target: Buffer, pos: number, s: string): number {
  const n = s.length;
  if (pos + n * 3 + 2 > target.length) throw new RangeError(`CSV field of ${n} chars does not fit at ${pos}`);
  let ascii = true;
  let quotes = 0;
  let special = false;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) ascii = false;
    else if (c === QUOTE) quotes++;
    else if (c === COMMA || c === CR || c === LF || c === BACKSLASH) special = true;
  }
  if (!special && quotes === 0) {
    if (!ascii) return pos + target.write(s, pos, 'utf8');
    if (n > SHORT_FIELD) return pos + target.write(s, pos, 'latin1');
    for (let i = 0; i < n; i++) target[pos + i] = s.charCodeAt(i);
    return pos + n;
  }
  target[pos] = QUOTE;
  const written = target.write(s, pos + 1, ascii ? 'latin1' : 'utf8');
  // 0x22 never occurs inside a UTF-8 multi-byte sequence, so quotes can be doubled in place,
  // moving bytes from the back until every quote has been duplicated.
  const end = pos + 1 + written + quotes;
  let w = end - 1;
  for (let r = pos + written; quotes > 0; r--) {
    const b = target[r]!;
    target[w--] = b;
    if (b === QUOTE) {
      target[w--] = QUOTE;
      quotes--;
    }
  }
  target[end] = QUOTE;
  return end + 1;
}

/**
 * Makes the ASCII text already written at target[start, end) one CSV field: returned as is
 * when it needs no quoting, else enclosed in quotes with inner quotes doubled, in place (the
 * row encoder writes text such as the answers straight into the row). Room needed past `end`:
 * 2 + the number of quotes in the text. Returns the field's end.
 */
export function quoteCsvFieldInPlace(target: Buffer, start: number, end: number): number {
  let quotes = 0;
  let special = 0;
  for (let i = start; i < end; i++) {
    const k = FIELD_BYTE[target[i]!]!;
    quotes += k & 1;
    special |= k;
  }
  if (special === 0) return end;
  const last = end + quotes + 1;
  if (last >= target.length)
    throw new RangeError(`CSV field of ${end - start} bytes does not fit at ${start}`);
  target[last] = QUOTE;
  let w = last - 1;
  for (let r = end - 1; r >= start; r--) {
    const b = target[r]!;
    target[w--] = b;
    if (b === QUOTE) target[w--] = QUOTE;
  }
  target[start] = QUOTE;
  return last + 1;
}

/** Per byte: 1 = a quote, 2 = another byte that forces quoting (, \ CR LF), 0 = plain. */
const FIELD_BYTE = new Uint8Array(256);
FIELD_BYTE[QUOTE] = 1;
for (const b of [COMMA, CR, LF, BACKSLASH]) FIELD_BYTE[b] = 2;

/**
 * Writes `""`: a present but empty string, which loaders keep apart from an empty field
 * (NULL in DuckDB, and in Snowflake with EMPTY_FIELD_AS_NULL and FIELD_OPTIONALLY_ENCLOSED_BY).
 */
export function writeCsvQuotedEmpty(target: Buffer, pos: number): number {
  if (pos + 2 > target.length) throw new RangeError(`CSV field does not fit at ${pos}`);
  target[pos] = QUOTE;
  target[pos + 1] = QUOTE;
  return pos + 2;
}

/**
 * Writes src[start, end) as one CSV field. The bytes are read as Latin-1 (ASCII in practice:
 * dnstap identity/version strings) and written as UTF-8, so the file stays valid UTF-8 even
 * when a producer sends a stray high byte. Room needed: csvBytesFieldMaxBytes(end - start).
 */
export function writeCsvBytesField(
  target: Buffer,
  pos: number,
  src: Buffer,
  start: number,
  end: number,
): number {
  const n = end - start;
  if (pos + n * 2 + 2 > target.length) throw new RangeError(`CSV field of ${n} bytes does not fit at ${pos}`);
  // One pass for the usual field (ASCII, nothing to quote): copy while checking. (A loop, not
  // Buffer#copy: on Node 20 copying part of a buffer allocates a view, ~60 ns.)
  let i = start;
  let q = pos;
  for (; i < end; i++) {
    const b = src[i]!;
    if (PLAIN_BYTE[b] === 0) break;
    target[q++] = b;
  }
  if (i === end) return q;
  let quote = false;
  for (; i < end && !quote; i++) {
    const b = src[i]!;
    quote = b === COMMA || b === QUOTE || b === CR || b === LF || b === BACKSLASH;
  }
  if (quote) target[pos++] = QUOTE;
  for (let k = start; k < end; k++) {
    const b = src[k]!;
    if (b < 0x80) {
      target[pos++] = b;
      if (b === QUOTE) target[pos++] = QUOTE;
    } else {
      target[pos++] = 0xc0 | (b >> 6);
      target[pos++] = 0x80 | (b & 0x3f);
    }
  }
  if (quote) target[pos++] = QUOTE;
  return pos;
}
