// Fidelity against reference decoders we did not write: every fixture (real captures from
// unbound, BIND, Knot, kresd, dnsdist, pdns-recursor, kdig) is converted by `snowtap convert`
// code and compared frame by frame with the Go `dnstap -y` CLI (miekg/dns inside), and the
// frame count with `dnstap-ldns -r`. Zero mismatches allowed.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { silentLogger } from '../../common/log';
import { convertFiles } from '../../enricher/convert';
import { parseChunk } from '../support/output-rows';
import { FIXTURES_DIR, requireInterop } from '../support/peers';
import { dnstapLdnsCount, type GoFrame, goDnstapFrames } from '../support/reference-decoders';

const FIXTURES = readdirSync(FIXTURES_DIR)
  .filter((f) => f.endsWith('.fstrm'))
  .sort();

/** Go prints names absolute, case as on the wire; ours are lower-cased without the trailing dot. */
function goName(name: string): string {
  if (name === '.') return '.';
  // Lower-case A-Z only (escapes like \065 stay as they are; they are digits).
  return name.replace(/\.$/, '').replace(/[A-Z]/g, (c) => c.toLowerCase());
}

// Mnemonics where miekg/dns 1.1.50 and Snowtap differ on purpose (documented in proto/dns/mnemonics.ts).
const QTYPE_ALIASES: Record<string, string> = { None: 'TYPE0' };
const QCLASS_ALIASES: Record<string, string> = { CLASS255: 'ANY' };
const RCODE_ALIASES: Record<string, string> = { BADSIG: 'BADVERS' };

function goTime(sec: number | undefined, nsec: number | undefined): string | undefined {
  if (sec === undefined) return undefined;
  const iso = new Date(sec * 1000).toISOString().slice(0, 19);
  return `${iso}.${String(nsec ?? 0).padStart(9, '0')}Z`;
}

function expectedEventTime(g: GoFrame): string {
  const response = g.type?.endsWith('_RESPONSE') ?? false;
  const q = goTime(g.queryTimeSec, g.queryTimeNsec);
  const r = goTime(g.responseTimeSec, g.responseTimeNsec);
  return (response ? (r ?? q) : (q ?? r)) ?? '';
}

function compare(g: GoFrame, row: Record<string, string>): string[] {
  const out: string[] = [];
  const eq = (field: string, ours: string, theirs: string) => {
    if (ours !== theirs) out.push(`${field}: ours=${JSON.stringify(ours)} go=${JSON.stringify(theirs)}`);
  };
  eq('message_type', row.message_type!, g.type ?? '');
  eq('family', row.family!, g.socketFamily ?? '');
  eq('protocol', row.protocol!, g.socketProtocol ?? '');
  // Go prints IPv4-mapped IPv6 addresses as plain IPv4; we keep ::ffff:a.b.c.d (RFC 5952 §5).
  const addr = (s: string) => s.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, '$1');
  eq('query_address', addr(row.query_address!), g.queryAddress ?? '');
  eq('response_address', addr(row.response_address!), g.responseAddress ?? '');
  eq('query_port', row.query_port!, g.queryPort === undefined ? '' : String(g.queryPort));
  eq('response_port', row.response_port!, g.responsePort === undefined ? '' : String(g.responsePort));
  eq('event_time', row.event_time!, expectedEventTime(g));
  if (g.dnsFrom !== undefined && g.dnsError === undefined) {
    eq('qname', row.qname!, g.qname === undefined ? '' : goName(g.qname));
    eq('qtype', row.qtype!, g.qtype === undefined ? '' : (QTYPE_ALIASES[g.qtype] ?? g.qtype));
    eq('qclass', row.qclass!, g.qclass === undefined ? '' : (QCLASS_ALIASES[g.qclass] ?? g.qclass));
    if (g.rcode !== '') eq('rcode', row.rcode!, RCODE_ALIASES[g.rcode ?? ''] ?? g.rcode ?? '');
    else if (!/^RCODE\d+$/.test(row.rcode!)) out.push(`rcode: ours=${row.rcode} go=(no mnemonic)`);
    eq('dns_id', row.dns_id!, String(g.id));
  }
  return out;
}

for (const name of FIXTURES) {
  test(`fidelity vs Go dnstap and dnstap-ldns: ${name}`, async (t) => {
    if (!requireInterop(t, ['dnstap', 'dnstap-ldns'])) return;
    const file = path.join(FIXTURES_DIR, name);
    const dir = mkdtempSync(path.join(tmpdir(), 'snowtap-fidelity-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const summary = await convertFiles({
      files: [file],
      output: {
        outputDir: dir,
        enricherId: 'fidelity',
        maxRows: 1e9,
        maxBytes: 1e12,
        maxAgeMs: 3.6e6,
        gzip: false,
      },
      policy: null,
      log: silentLogger(),
    });
    const rows = (await Promise.all(summary.chunkPaths.map(parseChunk))).flat();
    const go = await goDnstapFrames(file);
    const ldns = await dnstapLdnsCount(file);
    assert.equal(summary.failedFiles, 0);
    assert.equal(rows.length, go.length, 'row count equals the Go CLI frame count');
    assert.equal(summary.frames, ldns, 'frame count equals dnstap-ldns');
    rows.sort((a, b) => Number(a.record_id!.split('/')[2]) - Number(b.record_id!.split('/')[2]));
    const mismatches: string[] = [];
    let dnsCompared = 0;
    for (let i = 0; i < go.length; i++) {
      const g = go[i]!;
      const row = rows[i]!;
      assert.equal(Number(row.record_id!.split('/')[2]), g.index);
      if (g.dnsFrom !== undefined && g.dnsError === undefined) dnsCompared++;
      for (const m of compare(g, row)) mismatches.push(`frame ${g.index}: ${m}`);
    }
    t.diagnostic(
      `${name}: ${rows.length} frames compared, ${dnsCompared} with DNS fields, ${mismatches.length} mismatches`,
    );
    assert.deepEqual(mismatches.slice(0, 20), []);
    assert.ok(dnsCompared > 0 || go.length === 0);
  });
}
