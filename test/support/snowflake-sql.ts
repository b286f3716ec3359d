// Reads the shipped Snowflake SQL (sql/) for the tests: statements, the raw table's columns, the
// file format's options, the pipes (column list, $n / METADATA$ select list, PATTERN), and a
// small dialect mapping that lets DuckDB execute the table and the de-duplicating view.
// Just enough of Snowflake's SQL for our files; anything unexpected throws, so a new construct
// in sql/ has to be taught here (and to the DuckDB mapping) before the tests pass.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { OptionValue } from './snowflake-csv';

export interface SqlStatement {
  file: string;
  text: string;
}

/** Removes `--` comments outside string literals. */
function stripComments(sql: string): string {
  let out = '';
  for (let i = 0; i < sql.length; i++) {
    const c = sql[i]!;
    if (c === "'" || (c === '$' && sql[i + 1] === '$')) {
      const end = c === "'" ? stringEnd(sql, i) : dollarEnd(sql, i);
      out += sql.slice(i, end);
      i = end - 1;
    } else if (c === '-' && sql[i + 1] === '-') {
      while (i < sql.length && sql[i] !== '\n') i++;
      out += '\n';
    } else out += c;
  }
  return out;
}

/** Index after the string literal that opens at `start` ('' doubles a quote, \ escapes). */
function stringEnd(sql: string, start: number): number {
  for (let i = start + 1; i < sql.length; i++) {
    if (sql[i] === '\\') i++;
    else if (sql[i] === "'") {
      if (sql[i + 1] === "'") i++;
      else return i + 1;
    }
  }
  throw new Error(`unterminated string literal at ${start}`);
}

/** Index after the $$...$$ block (a function body) that opens at `start`. */
function dollarEnd(sql: string, start: number): number {
  const end = sql.indexOf('$$', start + 2);
  if (end < 0) throw new Error(`unterminated $$ block at ${start}`);
  return end + 2;
}

/** The body of the $$...$$ block of a statement (a JavaScript UDF). */
export function dollarBody(text: string): string {
  const start = text.indexOf('$$');
  if (start < 0) throw new Error('no $$ block');
  return text.slice(start + 2, dollarEnd(text, start) - 2);
}

/**
 * A Snowflake string literal's value: backslash escapes (\\ \' \n \r \t \0 \b \f, any other
 * character as itself) and '' for a quote, as in Snowflake's string constants.
 */
export function unquoteSqlString(lit: string): string {
  const body = lit.slice(1, -1);
  const map: Record<string, string> = { n: '\n', r: '\r', t: '\t', '0': '\0', b: '\b', f: '\f' };
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c === '\\') {
      const n = body[++i]!;
      out += map[n] ?? n;
    } else if (c === "'") {
      out += "'";
      i++;
    } else out += c;
  }
  return out;
}

/** Statements (split at ';' outside strings, comments removed) of every .sql file under dir, in path order. */
export function readSqlTree(dir: string): SqlStatement[] {
  const files: string[] = [];
  const walk = (rel: string) => {
    for (const e of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const r = path.join(rel, e.name);
      if (e.isDirectory()) walk(r);
      else if (e.name.endsWith('.sql')) files.push(r);
    }
  };
  walk('');
  const out: SqlStatement[] = [];
  for (const file of files.sort()) {
    const sql = stripComments(readFileSync(path.join(dir, file), 'utf8'));
    let start = 0;
    for (let i = 0; i < sql.length; i++) {
      if (sql[i] === "'") i = stringEnd(sql, i) - 1;
      else if (sql[i] === '$' && sql[i + 1] === '$') i = dollarEnd(sql, i) - 1;
      else if (sql[i] === ';') {
        const text = sql.slice(start, i).trim();
        if (text !== '') out.push({ file, text });
        start = i + 1;
      }
    }
    if (sql.slice(start).trim() !== '') throw new Error(`${file}: text after the last ';'`);
  }
  return out;
}

/** Tokens: string literals kept quoted, words (incl. $1, METADATA$X, <placeholder>), punctuation. */
export function tokenize(text: string): string[] {
  const tokens: string[] = [];
  for (let i = 0; i < text.length; ) {
    const c = text[i]!;
    if (/\s/.test(c)) i++;
    else if (c === "'") {
      const end = stringEnd(text, i);
      tokens.push(text.slice(i, end));
      i = end;
    } else if (c === '<') {
      const end = text.indexOf('>', i) + 1;
      tokens.push(text.slice(i, end));
      i = end;
    } else {
      const m = /^[A-Za-z0-9_$.@]+/.exec(text.slice(i));
      if (m !== null) {
        tokens.push(m[0]);
        i += m[0].length;
      } else {
        tokens.push(c);
        i++;
      }
    }
  }
  return tokens;
}

/** The one statement whose text starts with `prefix` (case-insensitive, spaces normalised). */
export function findStatement(all: readonly SqlStatement[], re: RegExp): SqlStatement[] {
  return all.filter((s) => re.test(s.text.replace(/\s+/g, ' ')));
}

export interface TableColumn {
  name: string;
  type: string;
}

/** CREATE [TRANSIENT] TABLE name ( col type [NOT NULL], ... ) options */
export function parseCreateTable(text: string): { name: string; columns: TableColumn[] } {
  const m =
    /^CREATE\s+(?:OR\s+REPLACE\s+)?(?:TRANSIENT\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?([A-Za-z0-9_.]+)\s*\(/i.exec(
      text,
    );
  if (m === null) throw new Error(`not a CREATE TABLE: ${text.slice(0, 60)}`);
  let depth = 1;
  let i = m[0].length;
  let cur = '';
  const parts: string[] = [];
  for (; depth > 0; i++) {
    const c = text[i];
    if (c === undefined) throw new Error('unbalanced parentheses in CREATE TABLE');
    if (c === '(') depth++;
    if (c === ')') depth--;
    if ((c === ',' && depth === 1) || depth === 0) {
      parts.push(cur.trim());
      cur = '';
    } else cur += c;
  }
  const columns = parts.map((p) => {
    const t = /^([A-Za-z_][A-Za-z0-9_]*)\s+(.+?)(\s+NOT\s+NULL)?$/is.exec(p.replace(/\s+/g, ' '));
    if (t === null) throw new Error(`column definition not understood: ${p}`);
    return { name: t[1]!.toLowerCase(), type: t[2]!.replace(/\s+/g, '').toUpperCase() };
  });
  return { name: m[1]!.toUpperCase(), columns };
}

/** KEY = value pairs of a CREATE [OR ALTER] FILE FORMAT; NONE becomes null. */
export function parseFileFormat(text: string): { name: string; options: Map<string, OptionValue> } {
  const tok = tokenize(text);
  const at = tok.findIndex((t) => t.toUpperCase() === 'FORMAT');
  if (tok[0]?.toUpperCase() !== 'CREATE' || at < 0)
    throw new Error(`not a CREATE FILE FORMAT: ${text.slice(0, 60)}`);
  let i = at + 1;
  if (tok[i]?.toUpperCase() === 'IF') i += 3;
  const name = tok[i++]!.toUpperCase();
  const options = new Map<string, OptionValue>();
  const value = (t: string): string | number | boolean | null => {
    if (t.startsWith("'")) return unquoteSqlString(t);
    const u = t.toUpperCase();
    if (u === 'NONE') return null;
    if (u === 'TRUE' || u === 'FALSE') return u === 'TRUE';
    if (/^\d+$/.test(t)) return Number(t);
    return u;
  };
  while (i < tok.length) {
    const key = tok[i++]!.toUpperCase();
    if (tok[i++] !== '=') throw new Error(`file format: '=' expected after ${key}`);
    if (tok[i] === '(') {
      const list: string[] = [];
      for (i++; tok[i] !== ')'; i++) if (tok[i] !== ',') list.push(String(value(tok[i]!)));
      i++;
      options.set(key, list);
    } else options.set(key, value(tok[i++]!));
  }
  return { name, options };
}

export interface PipeDefinition {
  name: string;
  table: string;
  /** Target columns, in COPY order. */
  columns: string[];
  /** What each target column gets: '$n' (1-based field) or a METADATA$ column. */
  select: string[];
  /** PATTERN's value (a regular expression). */
  pattern: string;
  fileFormat: string;
  onError: string;
  errorIntegration: string | null;
}

export function parsePipe(text: string): PipeDefinition {
  const flat = text.replace(/\s+/g, ' ');
  const head =
    /^CREATE (?:OR REPLACE )?PIPE (?:IF NOT EXISTS )?([A-Za-z0-9_]+) (.*?) AS COPY INTO ([A-Za-z0-9_.]+) \((.*?)\) FROM \( SELECT (.*?) FROM @([A-Za-z0-9_.]+) \) (.*)$/i.exec(
      flat,
    );
  if (head === null) throw new Error(`pipe not understood: ${flat.slice(0, 80)}`);
  const list = (s: string) => s.split(',').map((x) => x.trim());
  const tail = tokenize(head[7]!);
  const opt = (key: string): string | null => {
    const i = tail.findIndex((t) => t.toUpperCase() === key);
    return i < 0 ? null : tail[i + 2]!;
  };
  const pattern = opt('PATTERN');
  if (pattern === null) throw new Error('pipe without PATTERN');
  const ffAt = tail.findIndex((t) => t.toUpperCase() === 'FORMAT_NAME');
  const props = tokenize(head[2]!);
  const ei = props.findIndex((t) => t.toUpperCase() === 'ERROR_INTEGRATION');
  return {
    name: head[1]!.toUpperCase(),
    table: head[3]!.toUpperCase(),
    columns: list(head[4]!).map((c) => c.toLowerCase()),
    select: list(head[5]!).map((c) => c.toUpperCase()),
    pattern: unquoteSqlString(pattern),
    fileFormat: ffAt < 0 ? '' : unquoteSqlString(tail[ffAt + 2]!).toUpperCase(),
    onError: (opt('ON_ERROR') ?? 'SKIP_FILE').toUpperCase(),
    errorIntegration: ei < 0 ? null : props[ei + 2]!.toUpperCase(),
  };
}

/**
 * Snowflake PATTERN semantics on an object name: the pipe trims the stage URL's path, then the
 * regular expression must match the whole remaining path (as REGEXP_LIKE does; our patterns are
 * anchored with ^...$ anyway, so a search would give the same answer).
 */
export function patternMatches(pattern: string, stagePath: string, objectName: string): boolean {
  const prefix = stagePath.replace(/^\/+/, '');
  if (!objectName.startsWith(prefix)) return false;
  const rest = objectName.slice(prefix.length);
  return new RegExp(`^(?:${pattern})$`).test(rest);
}

/**
 * The dialect mapping for DuckDB, documented construct by construct (nothing else is rewritten):
 *   CREATE TRANSIENT TABLE          -> CREATE TABLE           (no Fail-safe in DuckDB)
 *   DATA_RETENTION_TIME_IN_DAYS = n -> removed                (Time Travel)
 *   COMMENT = '...' after the table -> removed
 *   TIMESTAMP_NTZ(9)                -> TIMESTAMP_NS           (both keep nanoseconds)
 *   TIMESTAMP_LTZ(9)                -> TIMESTAMPTZ            (DuckDB keeps microseconds)
 *   NUMBER(38, 0)                   -> HUGEINT                (38 digits do not fit BIGINT)
 *   CREATE OR REPLACE VIEW v COPY GRANTS AS -> CREATE OR REPLACE VIEW v AS
 * QUALIFY, ROW_NUMBER() OVER (...) and the column types VARCHAR, INTEGER, BIGINT, BOOLEAN are the same.
 */
export function toDuckDb(text: string): string {
  return text
    .replace(/\bCREATE\s+TRANSIENT\s+TABLE\b/i, 'CREATE TABLE')
    .replace(/\)\s*DATA_RETENTION_TIME_IN_DAYS\s*=\s*\d+/i, ')')
    .replace(/\)\s*COMMENT\s*=\s*'(?:[^']|'')*'\s*$/i, ')')
    .replace(/\bTIMESTAMP_NTZ\(9\)/gi, 'TIMESTAMP_NS')
    .replace(/\bTIMESTAMP_LTZ\(9\)/gi, 'TIMESTAMPTZ')
    .replace(/\bNUMBER\(38,\s*0\)/gi, 'HUGEINT')
    .replace(/\bCOPY\s+GRANTS\s+AS\b/i, 'AS');
}
