// End-to-end accounting for load tests: reads every committed CSV chunk under enricher output
// directories and counts rows and duplicate record_ids, so "frames sent by the producers" can
// be compared with "rows that reached storage".
//
// record_id is `<agent_id>/<incarnation>/<seq>/<index>` (proto/link/LINK.md), so duplicates
// are found per batch: one small bitset of indexes per `<agent>/<incarnation>/<seq>` instead
// of a Set of millions of strings. The first CSV field is read with an RFC 4180 scanner (a
// quoted field may hold commas and line breaks), so only record boundaries need care.

import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';

const PARTIAL_DIR = '_partial';
const QUOTE = 0x22;
const COMMA = 0x2c;
const LF = 0x0a;
const CR = 0x0d;

export interface CsvAudit {
  files: number;
  rows: number;
  /** Rows whose record_id was seen before (0 = exactly-once delivery in this run). */
  duplicates: number;
  /** Rows per enricher output directory, in the order given. */
  rowsPerDir: number[];
  /** Files still under _partial/ (uncommitted chunks; 0 after clean shutdowns). */
  partialFiles: number;
  /** record_ids that do not have the agent/incarnation/seq/index shape. */
  badIds: number;
}

function listFiles(dir: string): string[] {
  const out: string[] = [];
  let entries: import('node:fs').Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...listFiles(p));
    else out.push(p);
  }
  return out;
}

class IdSet {
  private readonly batches = new Map<string, Uint8Array>();
  duplicates = 0;
  bad = 0;

  add(id: string): void {
    const slash = id.lastIndexOf('/');
    const index = Number(id.slice(slash + 1));
    if (slash <= 0 || !Number.isInteger(index) || index < 0) {
      this.bad++;
      return;
    }
    const key = id.slice(0, slash);
    let bits = this.batches.get(key);
    const byte = index >>> 3;
    if (bits === undefined || bits.length <= byte) {
      const grown = new Uint8Array(Math.max(16, (byte + 1) * 2));
      if (bits !== undefined) grown.set(bits);
      bits = grown;
      this.batches.set(key, bits);
    }
    const mask = 1 << (index & 7);
    if ((bits[byte]! & mask) !== 0) this.duplicates++;
    else bits[byte]! |= mask;
  }
}

/** Calls onRecord(firstField) for each record after the header; returns the record count. */
export function scanCsv(buf: Buffer, onRecord: (firstField: string) => void): number {
  let rows = -1; // the header is not a row
  let i = 0;
  const n = buf.length;
  while (i < n) {
    // First field: quoted or plain.
    let first: string;
    if (buf[i] === QUOTE) {
      let j = i + 1;
      for (; j < n; j++) if (buf[j] === QUOTE && buf[++j] !== QUOTE) break;
      first = buf.toString('utf8', i + 1, j - 1).replaceAll('""', '"');
      i = j;
    } else {
      let j = i;
      while (j < n && buf[j] !== COMMA && buf[j] !== LF && buf[j] !== CR) j++;
      first = buf.toString('utf8', i, j);
      i = j;
    }
    // Rest of the record: skip to an unquoted line break.
    let quoted = false;
    for (; i < n; i++) {
      const c = buf[i];
      if (c === QUOTE) quoted = !quoted;
      else if (!quoted && c === LF) break;
    }
    i++;
    if (rows >= 0) onRecord(first);
    rows++;
  }
  return Math.max(rows, 0);
}

/** Audits the committed chunks under each of `dirs` (one per enricher). */
export function auditCsv(dirs: readonly string[]): CsvAudit {
  const ids = new IdSet();
  const audit: CsvAudit = { files: 0, rows: 0, duplicates: 0, rowsPerDir: [], partialFiles: 0, badIds: 0 };
  const add = (id: string) => ids.add(id);
  for (const dir of dirs) {
    let rows = 0;
    for (const file of listFiles(dir)) {
      const rel = path.relative(dir, file);
      if (rel.split(path.sep)[0] === PARTIAL_DIR) {
        if (file.endsWith('.partial')) audit.partialFiles++;
        continue;
      }
      if (!file.endsWith('.csv') && !file.endsWith('.csv.gz')) continue;
      let buf = readFileSync(file);
      if (file.endsWith('.gz')) buf = gunzipSync(buf);
      audit.files++;
      rows += scanCsv(buf, add);
    }
    audit.rowsPerDir.push(rows);
    audit.rows += rows;
  }
  audit.duplicates = ids.duplicates;
  audit.badIds = ids.bad;
  return audit;
}
