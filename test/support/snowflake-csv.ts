// A test-side reader of CSV as Snowflake's COPY INTO <table> reads it, for the options our
// SQL and our users can set: enclosure, ESCAPE, ESCAPE_UNENCLOSED_FIELD, NULL_IF,
// EMPTY_FIELD_AS_NULL, SKIP_HEADER, SKIP_BYTE_ORDER_MARK, RECORD/FIELD_DELIMITER,
// ERROR_ON_COLUMN_COUNT_MISMATCH, TIMESTAMP_FORMAT, ENCODING = UTF8 (invalid UTF-8 rejects
// the row unless REPLACE_INVALID_CHARACTERS). Independent of the production writer: it works
// on bytes, from the documented rules, so the writer cannot check itself.
//
// Defaults are Snowflake's documented ones for TYPE = CSV (CREATE FILE FORMAT, "Format type
// options", https://docs.snowflake.com/en/sql-reference/sql/create-file-format):
//   COMPRESSION = AUTO, RECORD_DELIMITER = new line (a logical new line: \r\n is one too),
//   FIELD_DELIMITER = ',', MULTI_LINE = TRUE, SKIP_HEADER = 0, SKIP_BLANK_LINES = FALSE,
//   TIMESTAMP_FORMAT = AUTO, ESCAPE = NONE, ESCAPE_UNENCLOSED_FIELD = '\\' (backslash),
//   TRIM_SPACE = FALSE, FIELD_OPTIONALLY_ENCLOSED_BY = NONE, NULL_IF = ('\\N'),
//   ERROR_ON_COLUMN_COUNT_MISMATCH = TRUE, REPLACE_INVALID_CHARACTERS = FALSE,
//   EMPTY_FIELD_AS_NULL = TRUE, SKIP_BYTE_ORDER_MARK = TRUE, ENCODING = 'UTF8'.
//
// Where the documentation leaves a case open, the reader takes the reading that is harder on
// the writer, and says so:
// - NULL_IF is matched against enclosed values too ("\N" as well as \N). The docs say only that
//   "Snowflake replaces these strings in the data load source with SQL NULL".
// - After ESCAPE_UNENCLOSED_FIELD, the C escapes \b \f \n \r \t and octal \ooo are decoded and
//   any other character is taken literally (so \. becomes . and \\ becomes \).
// - An empty enclosed field ("") is an empty string; only an unenclosed empty field is
//   "empty" for EMPTY_FIELD_AS_NULL (the docs describe empty fields as two successive
//   delimiters, e.g. ,,).

export interface SnowflakeCsvOptions {
  recordDelimiter: string;
  fieldDelimiter: string;
  multiLine: boolean;
  skipHeader: number;
  timestampFormat: string;
  escape: string | null;
  escapeUnenclosedField: string | null;
  trimSpace: boolean;
  fieldOptionallyEnclosedBy: string | null;
  nullIf: readonly string[];
  errorOnColumnCountMismatch: boolean;
  replaceInvalidCharacters: boolean;
  emptyFieldAsNull: boolean;
  skipByteOrderMark: boolean;
  encoding: string;
}

export const SNOWFLAKE_CSV_DEFAULTS: Readonly<SnowflakeCsvOptions> = {
  recordDelimiter: '\n',
  fieldDelimiter: ',',
  multiLine: true,
  skipHeader: 0,
  timestampFormat: 'AUTO',
  escape: null,
  escapeUnenclosedField: '\\',
  trimSpace: false,
  fieldOptionallyEnclosedBy: null,
  nullIf: ['\\N'],
  errorOnColumnCountMismatch: true,
  replaceInvalidCharacters: false,
  emptyFieldAsNull: true,
  skipByteOrderMark: true,
  encoding: 'UTF8',
};

/** Option set (B) of issue 8: a user's own format, everything but these three at the defaults. */
export const OPTION_SET_B: Readonly<SnowflakeCsvOptions> = {
  ...SNOWFLAKE_CSV_DEFAULTS,
  skipHeader: 1,
  fieldOptionallyEnclosedBy: '"',
};

const OPTION_KEYS: Record<string, keyof SnowflakeCsvOptions> = {
  RECORD_DELIMITER: 'recordDelimiter',
  FIELD_DELIMITER: 'fieldDelimiter',
  MULTI_LINE: 'multiLine',
  SKIP_HEADER: 'skipHeader',
  TIMESTAMP_FORMAT: 'timestampFormat',
  ESCAPE: 'escape',
  ESCAPE_UNENCLOSED_FIELD: 'escapeUnenclosedField',
  TRIM_SPACE: 'trimSpace',
  FIELD_OPTIONALLY_ENCLOSED_BY: 'fieldOptionallyEnclosedBy',
  NULL_IF: 'nullIf',
  ERROR_ON_COLUMN_COUNT_MISMATCH: 'errorOnColumnCountMismatch',
  REPLACE_INVALID_CHARACTERS: 'replaceInvalidCharacters',
  EMPTY_FIELD_AS_NULL: 'emptyFieldAsNull',
  SKIP_BYTE_ORDER_MARK: 'skipByteOrderMark',
  ENCODING: 'encoding',
};
/** Options that do not change how a row is read (or that the loader handles before us). */
const IGNORED_KEYS = new Set([
  'TYPE',
  'COMPRESSION',
  'COMMENT',
  'FILE_EXTENSION',
  'DATE_FORMAT',
  'TIME_FORMAT',
]);

export type OptionValue = string | number | boolean | null | string[];

/**
 * Options from a CREATE FILE FORMAT's KEY = value pairs (already unquoted: NONE is null).
 * Unknown keys throw: a new option in the SQL must be modelled here before the tests pass.
 */
export function optionsFromFileFormat(pairs: ReadonlyMap<string, OptionValue>): SnowflakeCsvOptions {
  const o: Record<string, unknown> = { ...SNOWFLAKE_CSV_DEFAULTS };
  for (const [key, value] of pairs) {
    if (IGNORED_KEYS.has(key)) continue;
    const name = OPTION_KEYS[key];
    if (name === undefined) throw new Error(`file format option ${key} is not modelled by the test reader`);
    o[name] = value;
  }
  const opts = o as unknown as SnowflakeCsvOptions;
  if (opts.trimSpace) throw new Error('TRIM_SPACE = TRUE is not modelled');
  if (opts.encoding.toUpperCase().replace('-', '') !== 'UTF8')
    throw new Error('only ENCODING = UTF8 is modelled');
  return opts;
}

export interface RejectedRow {
  /** 1-based record number in the file (header included). */
  record: number;
  code: 'INVALID_UTF8' | 'COLUMN_COUNT' | 'UNTERMINATED_ENCLOSURE' | 'AFTER_ENCLOSURE' | 'TYPE';
  message: string;
}

export interface ReadResult {
  /** One entry per loaded row: the raw field values after CSV rules, null = SQL NULL. */
  rows: (string | null)[][];
  rejected: RejectedRow[];
}

interface RawField {
  /** Field bytes after enclosure/escape processing. */
  value: number[];
  /** Bytes as they stood in the file (without enclosing quotes): what NULL_IF sees unenclosed. */
  raw: number[];
  enclosed: boolean;
}

const C_ESCAPES: Record<string, number> = { b: 8, f: 12, n: 10, r: 13, t: 9 };

function byteOf(s: string | null): number {
  if (s === null) return -1;
  const b = Buffer.from(s, 'utf8');
  if (b.length !== 1)
    throw new Error(`single-byte characters only in the test reader, got ${JSON.stringify(s)}`);
  return b[0]!;
}

/** True when buf[start, end) is well-formed UTF-8 (TextDecoder with fatal = true). */
function validUtf8(buf: Buffer, start: number, end: number): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(start, end));
    return true;
  } catch {
    return false;
  }
}

/**
 * Splits `data` into rows of field values under `o`. `columnCount` is the number of fields the
 * target expects (ERROR_ON_COLUMN_COUNT_MISMATCH); with the rule relaxed, extra fields are
 * dropped and missing ones are NULL.
 */
export function readSnowflakeCsv(data: Buffer, o: SnowflakeCsvOptions, columnCount: number): ReadResult {
  const enc = byteOf(o.fieldOptionallyEnclosedBy);
  const esc = byteOf(o.escape);
  const escU = byteOf(o.escapeUnenclosedField);
  const fd = byteOf(o.fieldDelimiter);
  const rd = Buffer.from(o.recordDelimiter, 'utf8');
  const logicalNewline = o.recordDelimiter === '\n';
  const rows: (string | null)[][] = [];
  const rejected: RejectedRow[] = [];
  let p = 0;
  if (o.skipByteOrderMark && data[0] === 0xef && data[1] === 0xbb && data[2] === 0xbf) p = 3;
  const n = data.length;
  /** Length of the record delimiter at i, 0 when there is none. */
  const atRecordEnd = (i: number): number => {
    if (logicalNewline && data[i] === 13 && data[i + 1] === 10) return 2;
    for (let k = 0; k < rd.length; k++) if (data[i + k] !== rd[k]) return 0;
    return rd.length;
  };
  let recordNo = 0;
  while (p < n) {
    recordNo++;
    const recordStart = p;
    const fields: RawField[] = [];
    let error: RejectedRow | null = null;
    let ended = false;
    while (!ended) {
      const f: RawField = { value: [], raw: [], enclosed: false };
      if (enc >= 0 && data[p] === enc) {
        f.enclosed = true;
        p++;
        let closed = false;
        while (p < n) {
          const b = data[p]!;
          if (esc >= 0 && b === esc && esc !== enc && p + 1 < n) {
            f.value.push(data[p + 1]!);
            f.raw.push(b, data[p + 1]!);
            p += 2;
          } else if (b === enc) {
            if (data[p + 1] === enc) {
              f.value.push(enc);
              f.raw.push(enc, enc);
              p += 2;
            } else {
              p++;
              closed = true;
              break;
            }
          } else {
            if (!o.multiLine && atRecordEnd(p) > 0) break;
            f.value.push(b);
            f.raw.push(b);
            p++;
          }
        }
        if (!closed)
          error ??= {
            record: recordNo,
            code: 'UNTERMINATED_ENCLOSURE',
            message: 'end of record inside quotes',
          };
        const after = atRecordEnd(p);
        if (p >= n || after > 0) {
          p += after;
          ended = true;
        } else if (data[p] === fd) p++;
        else {
          error ??= {
            record: recordNo,
            code: 'AFTER_ENCLOSURE',
            message: `byte 0x${data[p]!.toString(16)} after a closing quote`,
          };
          // Resynchronise at the next record delimiter.
          while (p < n && atRecordEnd(p) === 0) p++;
          p += atRecordEnd(p);
          ended = true;
        }
      } else {
        for (;;) {
          if (p >= n) {
            ended = true;
            break;
          }
          const end = atRecordEnd(p);
          if (end > 0) {
            p += end;
            ended = true;
            break;
          }
          const b = data[p]!;
          if (b === fd) {
            p++;
            break;
          }
          if (escU >= 0 && b === escU && p + 1 < n) {
            const next = data[p + 1]!;
            f.raw.push(b, next);
            p += 2;
            const ch = String.fromCharCode(next);
            if (C_ESCAPES[ch] !== undefined) f.value.push(C_ESCAPES[ch]!);
            else if (next >= 0x30 && next <= 0x37) {
              let v = next - 0x30;
              for (let k = 0; k < 2 && data[p]! >= 0x30 && data[p]! <= 0x37; k++) {
                f.raw.push(data[p]!);
                v = v * 8 + data[p++]! - 0x30;
              }
              f.value.push(v & 0xff);
            } else f.value.push(next);
            continue;
          }
          f.value.push(b);
          f.raw.push(b);
          p++;
        }
      }
      fields.push(f);
    }
    if (!o.replaceInvalidCharacters && !validUtf8(data, recordStart, p))
      error ??= { record: recordNo, code: 'INVALID_UTF8', message: 'Invalid UTF8 detected in string' };
    if (recordNo <= o.skipHeader) continue;
    if (error === null && o.errorOnColumnCountMismatch && fields.length !== columnCount)
      error = {
        record: recordNo,
        code: 'COLUMN_COUNT',
        message: `Number of columns in file (${fields.length}) does not match that of the corresponding table (${columnCount})`,
      };
    if (error !== null) {
      rejected.push(error);
      continue;
    }
    const row: (string | null)[] = [];
    for (let i = 0; i < columnCount; i++) {
      const f = fields[i];
      if (f === undefined) {
        row.push(null);
        continue;
      }
      // REPLACE_INVALID_CHARACTERS: Buffer#toString replaces with U+FFFD, as Snowflake does.
      const value = Buffer.from(f.value).toString('utf8');
      const raw = Buffer.from(f.raw).toString('utf8');
      if (!f.enclosed && raw === '' && o.emptyFieldAsNull) row.push(null);
      else if (o.nullIf.includes(f.enclosed ? value : raw)) row.push(null);
      else row.push(value);
    }
    rows.push(row);
  }
  return { rows, rejected };
}

// ---- typed columns ------------------------------------------------------------------------

const AUTO_TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z)?$/;

/** A regular expression for a TIMESTAMP_FORMAT made of the elements our SQL uses. */
function formatRegex(format: string): RegExp {
  let re = '^';
  for (let i = 0; i < format.length; ) {
    const rest = format.slice(i);
    const lit = /^"([^"]*)"/.exec(rest);
    const el = /^(YYYY|MM|DD|HH24|MI|SS|FF[0-9]?)/.exec(rest);
    if (lit !== null) {
      re += lit[1]!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      i += lit[0].length;
    } else if (el !== null) {
      const e = el[1]!;
      if (e === 'YYYY') re += '(\\d{4})';
      else if (e === 'MM') re += '(\\d{2})';
      else if (e === 'DD') re += '(\\d{2})';
      else if (e === 'HH24') re += '(\\d{2})';
      else if (e === 'MI') re += '(\\d{2})';
      else if (e === 'SS') re += '(\\d{2})';
      else re += e.length === 3 ? `(\\d{${e[2]}})` : '(\\d{1,9})';
      i += e.length;
    } else if (/^[-:. T/]/.test(rest)) {
      re += rest[0] === '.' ? '\\.' : rest[0];
      i++;
    } else throw new Error(`TIMESTAMP_FORMAT element at ${JSON.stringify(rest)} is not modelled`);
  }
  return new RegExp(re + '$');
}

/**
 * The value a TIMESTAMP_NTZ column gets, as YYYY-MM-DDTHH:MI:SS.fffffffff, or an Error when
 * Snowflake would reject it (format mismatch, a date that does not exist, a year outside 1-9999).
 */
export function parseTimestamp(text: string, format: string): string | Error {
  const m = format === 'AUTO' ? AUTO_TIMESTAMP.exec(text) : formatRegex(format).exec(text);
  if (m === null) return new Error(`Timestamp '${text}' is not recognized`);
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const frac = (m[7] ?? '').padEnd(9, '0');
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][mo - 1];
  if (y < 1 || days === undefined || d < 1 || d > days || h > 23 || mi > 59 || s > 59)
    return new Error(`Timestamp '${text}' is not recognized`);
  return `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}.${frac}`;
}

/** NUMBER(38, 0) (INTEGER, BIGINT, ...): an optional sign and at most 38 digits. */
export function parseInteger(text: string): string | Error {
  const m = /^([+-]?)0*(\d+)$/.exec(text);
  if (m === null || m[2]!.length > 38) return new Error(`Numeric value '${text}' is not recognized`);
  return m[2] === '0' ? '0' : `${m[1] === '-' ? '-' : ''}${m[2]}`;
}

/**
 * BOOLEAN from text: Snowflake accepts true/false, t/f, yes/no, y/n, on/off, 1/0 in any case
 * (documented "Boolean conversion"); returned as 'true' / 'false'.
 */
export function parseBoolean(text: string): string | Error {
  const t = text.toLowerCase();
  if (['true', 't', 'yes', 'y', 'on', '1'].includes(t)) return 'true';
  if (['false', 'f', 'no', 'n', 'off', '0'].includes(t)) return 'false';
  return new Error(`Boolean value '${text}' is not recognized`);
}

/** Converts a field to a Snowflake column type; Error when the row would be rejected. */
export function castField(
  value: string | null,
  sqlType: string,
  o: SnowflakeCsvOptions,
): string | null | Error {
  if (value === null) return null;
  const t = sqlType.toUpperCase();
  if (t.startsWith('VARCHAR') || t === 'STRING' || t === 'TEXT') return value;
  // EMPTY_FIELD_AS_NULL = TRUE loads "" into a non-string column as NULL, too.
  if (value === '' && o.emptyFieldAsNull) return null;
  if (/^(INTEGER|INT|BIGINT|SMALLINT|NUMBER(\(\d+(, *0)?\))?)$/.test(t)) return parseInteger(value);
  if (t.startsWith('TIMESTAMP')) return parseTimestamp(value, o.timestampFormat);
  if (t === 'BOOLEAN') return parseBoolean(value);
  throw new Error(`column type ${sqlType} is not modelled`);
}
