// Minimal DNS wire-format writer for synthetic traffic (demo and load generator): a query
// with one question and optional EDNS Client Subnet, and a response with A/AAAA/CNAME
// answers. Not used on the ingest path; tests check its output with the real parser.

export interface SyntheticQuestion {
  name: string; // presentation format without escapes, e.g. "www.example.com"
  qtype: number;
}

export interface SyntheticAnswer {
  type: 1 | 28 | 5; // A | AAAA | CNAME
  ttl: number;
  /** 4 or 16 address bytes, or a target name for CNAME. */
  data: Uint8Array | string;
}

function writeName(out: number[], name: string): void {
  if (name !== '' && name !== '.') {
    for (const label of name.split('.')) {
      const bytes = Buffer.from(label, 'latin1');
      if (bytes.length === 0 || bytes.length > 63) throw new RangeError(`bad label in ${name}`);
      out.push(bytes.length, ...bytes);
    }
  }
  out.push(0);
}

function u16(out: number[], v: number): void {
  out.push((v >> 8) & 0xff, v & 0xff);
}

function u32(out: number[], v: number): void {
  out.push((v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
}

function writeOpt(
  out: number[],
  ecs?: { family: 1 | 2; source: number; address: Uint8Array },
  scope = 0,
): void {
  out.push(0); // root owner
  u16(out, 41); // OPT
  u16(out, 1232); // UDP payload size
  u32(out, 0); // extended rcode, version, flags
  if (!ecs) {
    u16(out, 0);
    return;
  }
  const addrLen = Math.ceil(ecs.source / 8);
  u16(out, 4 + 4 + addrLen);
  u16(out, 8); // EDNS Client Subnet
  u16(out, 4 + addrLen);
  u16(out, ecs.family);
  out.push(ecs.source, scope);
  for (let i = 0; i < addrLen; i++) out.push(ecs.address[i] ?? 0);
}

export interface QueryOptions {
  id: number;
  rd?: boolean;
  ecs?: { family: 1 | 2; source: number; address: Uint8Array };
  edns?: boolean;
}

export function buildQuery(q: SyntheticQuestion, o: QueryOptions): Buffer {
  const out: number[] = [];
  u16(out, o.id);
  out.push(o.rd === false ? 0x00 : 0x01, 0x00);
  u16(out, 1);
  u16(out, 0);
  u16(out, 0);
  u16(out, o.edns || o.ecs ? 1 : 0);
  writeName(out, q.name);
  u16(out, q.qtype);
  u16(out, 1);
  if (o.edns || o.ecs) writeOpt(out, o.ecs);
  return Buffer.from(out);
}

export function buildResponse(
  q: SyntheticQuestion,
  o: QueryOptions & { rcode: number; answers: SyntheticAnswer[] },
): Buffer {
  const out: number[] = [];
  u16(out, o.id);
  out.push(0x80 | (o.rd === false ? 0 : 0x01), 0x80 | (o.rcode & 0x0f));
  u16(out, 1);
  u16(out, o.answers.length);
  u16(out, 0);
  u16(out, o.edns || o.ecs ? 1 : 0);
  writeName(out, q.name);
  u16(out, q.qtype);
  u16(out, 1);
  for (const a of o.answers) {
    out.push(0xc0, 12); // compression pointer to the question name
    u16(out, a.type);
    u16(out, 1);
    u32(out, a.ttl);
    if (typeof a.data === 'string') {
      const rdata: number[] = [];
      writeName(rdata, a.data);
      u16(out, rdata.length);
      out.push(...rdata);
    } else {
      u16(out, a.data.length);
      out.push(...a.data);
    }
  }
  if (o.edns || o.ecs) writeOpt(out, o.ecs, o.ecs ? o.ecs.source : 0);
  return Buffer.from(out);
}
