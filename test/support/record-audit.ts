// Audits every record of a replayed capture against what reached the committed CSV chunks:
// the expected rows come from `convert` of the same capture (an independent path through the
// row encoder, no link, no agent), the delivered ones are de-duplicated by record_id and put
// back in the order the agent read them. Shared by the fault tests (test/interop/*-faults).
import assert from 'node:assert/strict';
import path from 'node:path';
import { silentLogger } from '../../common/log';
import { convertFiles } from '../../enricher/convert';
import { replicateCapture } from '../../loadtest/capture';
import { committedRows } from './pipeline-procs';

export interface Expected {
  file: string;
  frames: number;
  /** The fields every row must carry, in capture order. */
  keys: string[];
}

function key(r: Record<string, string>): string {
  return `${r.event_time}|${r.message_type}|${r.qname}|${r.dns_id}|${r.query_port}`;
}

function seqIndex(id: string): [number, number] {
  const parts = id.split('/');
  return [Number(parts[2]), Number(parts[3])];
}

/** Writes a capture of at least `minRecords` records under dir and computes its expected rows. */
export async function expectedCapture(dir: string, minRecords: number): Promise<Expected> {
  const file = path.join(dir, 'replay.fstrm');
  const { frames } = replicateCapture(file, minRecords);
  const out = path.join(dir, 'expected');
  await convertFiles({
    files: [file],
    output: { outputDir: out, enricherId: 'ref', maxRows: 1e9, maxBytes: 1e12, maxAgeMs: 3.6e6, gzip: false },
    policy: null,
    log: silentLogger(),
  });
  const rows = await committedRows(out);
  // convert numbers its records in capture order in the third record_id field.
  rows.sort((a, b) => seqIndex(a.record_id!)[0] - seqIndex(b.record_id!)[0]);
  return { file, frames, keys: rows.map(key) };
}

export interface Delivered {
  rows: number;
  distinct: number;
  duplicates: number;
}

/**
 * Asserts that the committed rows under `dirs` hold every expected record, in agent order,
 * and nothing else (one agent incarnation); returns the counts.
 */
export async function auditDelivery(dirs: readonly string[], want: Expected): Promise<Delivered> {
  const rows = (await Promise.all(dirs.map(committedRows))).flat();
  const byId = new Map<string, Record<string, string>>();
  for (const r of rows) byId.set(r.record_id!, r);
  const ordered = [...byId.entries()]
    .map(([id, r]) => ({ si: seqIndex(id), r }))
    .sort((a, b) => a.si[0] - b.si[0] || a.si[1] - b.si[1]);
  const got = ordered.map((o) => key(o.r));
  let missing = 0;
  for (let i = 0; i < want.keys.length; i++) if (got[i] !== want.keys[i]) missing++;
  assert.equal(
    got.length,
    want.keys.length,
    `distinct records delivered (${got.length}) = records in the capture (${want.keys.length})`,
  );
  assert.equal(missing, 0, `records that differ from the capture at their position: ${missing}`);
  return { rows: rows.length, distinct: byId.size, duplicates: rows.length - byId.size };
}
