// Test-only builder of wire-format DNS messages (RFC 1035 §4.1, RFC 6891 OPT, RFC 7871 ECS),
// written from the RFCs and independent of proto/dns: tests check the parser against it,
// never against the parser's own logic. It builds exactly the bytes asked for, including
// wrong ones (bad counts, bad pointers, odd label types), so it validates nothing.

/** A label as text (latin1, byte per char) or raw bytes. */
export type Label = string | Buffer | readonly number[];

export interface HeaderFields {
  id?: number;
  qr?: boolean;
  opcode?: number;
  aa?: boolean;
  tc?: boolean;
  rd?: boolean;
  ra?: boolean;
  /** Lower 4 bits of the RCODE. */
  rcode?: number;
  qdcount?: number;
  ancount?: number;
  nscount?: number;
  arcount?: number;
}

export interface EdnsOption {
  code: number;
  data: readonly number[] | Buffer;
}

export class DnsBuilder {
  private readonly bytes: number[] = [];

  /** Offset of the next byte (use it to aim compression pointers). */
  get offset(): number {
    return this.bytes.length;
  }

  u8(n: number): this {
    this.bytes.push(n & 0xff);
    return this;
  }

  u16(n: number): this {
    return this.u8(n >> 8).u8(n);
  }

  u32(n: number): this {
    return this.u16(Math.floor(n / 0x10000)).u16(n & 0xffff);
  }

  raw(data: readonly number[] | Buffer): this {
    for (const b of data) this.bytes.push(b);
    return this;
  }

  header(h: HeaderFields = {}): this {
    const flags =
      (h.qr ? 0x8000 : 0) |
      ((h.opcode ?? 0) << 11) |
      (h.aa ? 0x0400 : 0) |
      (h.tc ? 0x0200 : 0) |
      (h.rd ? 0x0100 : 0) |
      (h.ra ? 0x0080 : 0) |
      ((h.rcode ?? 0) & 0xf);
    return this.u16(h.id ?? 0)
      .u16(flags)
      .u16(h.qdcount ?? 0)
      .u16(h.ancount ?? 0)
      .u16(h.nscount ?? 0)
      .u16(h.arcount ?? 0);
  }

  /** Length-prefixed labels, without the terminating root byte. */
  labels(labels: readonly Label[]): this {
    for (const l of labels) {
      const b = typeof l === 'string' ? Buffer.from(l, 'latin1') : l;
      this.u8(b.length).raw(b);
    }
    return this;
  }

  /** An uncompressed name: labels then the root byte. [] is the root name. */
  name(labels: readonly Label[]): this {
    return this.labels(labels).u8(0);
  }

  /** A compression pointer to `target` (a message offset). */
  pointer(target: number): this {
    return this.u16(0xc000 | target);
  }

  /** Dotted text split on "." (plain names only) as an uncompressed name. */
  dotted(name: string): this {
    return this.name(name === '.' || name === '' ? [] : name.split('.'));
  }

  question(name: string, qtype = 1, qclass = 1): this {
    return this.dotted(name).u16(qtype).u16(qclass);
  }

  /** RR fixed part and RDATA after an owner name already written. */
  rrBody(type: number, klass: number, ttl: number, rdata: readonly number[] | Buffer): this {
    return this.u16(type).u16(klass).u32(ttl).u16(rdata.length).raw(rdata);
  }

  /** An A record for `name` (uncompressed owner). */
  a(name: string, addr: readonly number[] = [192, 0, 2, 1], ttl = 300): this {
    return this.dotted(name).rrBody(1, 1, ttl, addr);
  }

  /** An OPT pseudo-RR (root owner): UDP size, extended RCODE, version, DO, options. */
  opt(
    o: {
      udpSize?: number;
      extRcode?: number;
      version?: number;
      dnssecOk?: boolean;
      options?: EdnsOption[];
    } = {},
  ): this {
    const rdata: number[] = [];
    for (const opt of o.options ?? []) {
      rdata.push(opt.code >> 8, opt.code & 0xff, opt.data.length >> 8, opt.data.length & 0xff, ...opt.data);
    }
    this.u8(0)
      .u16(41)
      .u16(o.udpSize ?? 1232);
    this.u8(o.extRcode ?? 0)
      .u8(o.version ?? 0)
      .u16(o.dnssecOk ? 0x8000 : 0);
    return this.u16(rdata.length).raw(rdata);
  }

  build(): Buffer {
    return Buffer.from(this.bytes);
  }
}

/** An ECS option (code 8); `address` is written as given (no truncation, no masking). */
export function ecsOption(
  family: number,
  source: number,
  scope: number,
  address: readonly number[],
): EdnsOption {
  return { code: 8, data: [family >> 8, family & 0xff, source, scope, ...address] };
}

/** A typical query: header with RD, one question, optionally an OPT RR. */
export function buildQuery(
  name: string,
  qtype = 1,
  o: { id?: number; options?: EdnsOption[]; edns?: boolean } = {},
): Buffer {
  const edns = o.edns ?? o.options !== undefined;
  return new DnsBuilder()
    .header({ id: o.id ?? 0x1234, rd: true, qdcount: 1, arcount: edns ? 1 : 0 })
    .question(name, qtype)
    .raw(edns ? new DnsBuilder().opt({ options: o.options }).build() : [])
    .build();
}

/** Splits presentation text into labels and resolves \X and \DDD escapes back to bytes. */
export function unescapePresentation(text: string): Buffer[] {
  if (text === '.') return [];
  const labels: Buffer[] = [];
  let cur: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\\') {
      const next = text.slice(i + 1, i + 4);
      if (/^[0-9]{3}$/.test(next)) {
        cur.push(Number(next));
        i += 3;
      } else {
        cur.push(text.charCodeAt(i + 1));
        i += 1;
      }
    } else if (c === '.') {
      labels.push(Buffer.from(cur));
      cur = [];
    } else {
      cur.push(text.charCodeAt(i));
    }
  }
  labels.push(Buffer.from(cur));
  return labels;
}
