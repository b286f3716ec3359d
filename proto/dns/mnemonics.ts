// Mnemonics for the CSV: QTYPE, QCLASS, RCODE and OPCODE as strings and as pre-encoded
// bytes. Known values follow the tables of miekg/dns (the library behind the reference
// `dnstap` CLI); unknown values use the RFC 3597 generic forms TYPE<n> / CLASS<n>, and
// RCODE<n> / OPCODE<n>. Each table caches one string and one Buffer per value on first use,
// so the per-record cost is an array load; the caches are bounded by the value space.
//
// Deliberate differences from miekg/dns: type 0 and 65535 print as TYPE0 / TYPE65535 (miekg
// says "None" / "Reserved", which are not mnemonics a zone file would accept); rcode 16 is
// BADVERS (its EDNS meaning; miekg prints the TSIG meaning BADSIG); opcode 6 is DSO.

/** Values below this are cached in arrays allocated up front (every common QTYPE is below 256). */
const INITIAL_CACHE = 256;

/** A number -> mnemonic table with lazily cached strings and bytes for every value. */
export class MnemonicTable {
  private readonly known = new Map<number, string>();
  // The caches start small and grow (to a power of two, at most `size`) when a larger value
  // first shows up: two 65536-slot arrays per table were 2 MiB of every process's heap.
  private strings: (string | undefined)[];
  private bytes: (Buffer | undefined)[];

  /** `size` values (0..size-1) are possible; the unknown ones print as prefix + number. */
  constructor(
    entries: readonly (readonly [number, string])[],
    private readonly unknownPrefix: string,
    private readonly size: number,
  ) {
    for (const [n, s] of entries) this.known.set(n, s);
    this.strings = new Array(Math.min(size, INITIAL_CACHE));
    this.bytes = new Array(Math.min(size, INITIAL_CACHE));
  }

  /** A copy of `cache` long enough for value n (< size): the next power of two, at most size. */
  private grown<T>(cache: (T | undefined)[], n: number): (T | undefined)[] {
    let length = cache.length;
    while (length <= n) length *= 2;
    const next: (T | undefined)[] = new Array(Math.min(this.size, length));
    for (let i = 0; i < cache.length; i++) next[i] = cache[i];
    return next;
  }

  name(n: number): string {
    if (!(n >= 0 && n < this.size)) return this.unknownPrefix + n;
    let s = this.strings[n];
    if (s === undefined) {
      if (n >= this.strings.length) this.strings = this.grown(this.strings, n);
      s = this.strings[n] = this.known.get(n) ?? this.unknownPrefix + n;
    }
    return s;
  }

  /** The mnemonic as ASCII bytes (shared: do not modify). */
  encoded(n: number): Buffer {
    if (!(n >= 0 && n < this.size)) return Buffer.from(this.unknownPrefix + n, 'latin1');
    let b = this.bytes[n];
    if (b === undefined) {
      if (n >= this.bytes.length) this.bytes = this.grown(this.bytes, n);
      b = this.bytes[n] = Buffer.from(this.name(n), 'latin1');
    }
    return b;
  }

  /** True when the value has a registered mnemonic. */
  isKnown(n: number): boolean {
    return this.known.has(n);
  }

  /** The registered values (those with a mnemonic), in registration order. */
  knownValues(): IterableIterator<number> {
    return this.known.keys();
  }
}

// biome-ignore format: one entry per line would run to 90 lines
const TYPES: readonly (readonly [number, string])[] = [
  [1, 'A'], [2, 'NS'], [3, 'MD'], [4, 'MF'], [5, 'CNAME'], [6, 'SOA'], [7, 'MB'], [8, 'MG'],
  [9, 'MR'], [10, 'NULL'], [12, 'PTR'], [13, 'HINFO'], [14, 'MINFO'], [15, 'MX'], [16, 'TXT'],
  [17, 'RP'], [18, 'AFSDB'], [19, 'X25'], [20, 'ISDN'], [21, 'RT'], [23, 'NSAP-PTR'],
  [24, 'SIG'], [25, 'KEY'], [26, 'PX'], [27, 'GPOS'], [28, 'AAAA'], [29, 'LOC'], [30, 'NXT'],
  [31, 'EID'], [32, 'NIMLOC'], [33, 'SRV'], [34, 'ATMA'], [35, 'NAPTR'], [36, 'KX'],
  [37, 'CERT'], [39, 'DNAME'], [41, 'OPT'], [42, 'APL'], [43, 'DS'], [44, 'SSHFP'],
  [45, 'IPSECKEY'], [46, 'RRSIG'], [47, 'NSEC'], [48, 'DNSKEY'], [49, 'DHCID'], [50, 'NSEC3'],
  [51, 'NSEC3PARAM'], [52, 'TLSA'], [53, 'SMIMEA'], [55, 'HIP'], [56, 'NINFO'], [57, 'RKEY'],
  [58, 'TALINK'], [59, 'CDS'], [60, 'CDNSKEY'], [61, 'OPENPGPKEY'], [62, 'CSYNC'],
  [63, 'ZONEMD'], [64, 'SVCB'], [65, 'HTTPS'], [99, 'SPF'], [100, 'UINFO'], [101, 'UID'],
  [102, 'GID'], [103, 'UNSPEC'], [104, 'NID'], [105, 'L32'], [106, 'L64'], [107, 'LP'],
  [108, 'EUI48'], [109, 'EUI64'], [128, 'NXNAME'], [249, 'TKEY'], [250, 'TSIG'], [251, 'IXFR'],
  [252, 'AXFR'], [253, 'MAILB'], [254, 'MAILA'], [255, 'ANY'], [256, 'URI'], [257, 'CAA'],
  [258, 'AVC'], [260, 'AMTRELAY'], [261, 'RESINFO'], [32768, 'TA'], [32769, 'DLV'],
];

const CLASSES: readonly (readonly [number, string])[] = [
  [1, 'IN'],
  [2, 'CS'],
  [3, 'CH'],
  [4, 'HS'],
  [254, 'NONE'],
  [255, 'ANY'],
];

// biome-ignore format: a table
const RCODES: readonly (readonly [number, string])[] = [
  [0, 'NOERROR'], [1, 'FORMERR'], [2, 'SERVFAIL'], [3, 'NXDOMAIN'], [4, 'NOTIMP'],
  [5, 'REFUSED'], [6, 'YXDOMAIN'], [7, 'YXRRSET'], [8, 'NXRRSET'], [9, 'NOTAUTH'],
  [10, 'NOTZONE'], [11, 'DSOTYPENI'], [16, 'BADVERS'], [17, 'BADKEY'], [18, 'BADTIME'],
  [19, 'BADMODE'], [20, 'BADNAME'], [21, 'BADALG'], [22, 'BADTRUNC'], [23, 'BADCOOKIE'],
];

const OPCODES: readonly (readonly [number, string])[] = [
  [0, 'QUERY'],
  [1, 'IQUERY'],
  [2, 'STATUS'],
  [4, 'NOTIFY'],
  [5, 'UPDATE'],
  [6, 'DSO'],
];

export const QTYPES = new MnemonicTable(TYPES, 'TYPE', 65536);
export const QCLASSES = new MnemonicTable(CLASSES, 'CLASS', 65536);
/** 12-bit extended RCODE (header 4 bits + EDNS 8 bits). */
export const RCODES_TABLE = new MnemonicTable(RCODES, 'RCODE', 4096);
export const OPCODES_TABLE = new MnemonicTable(OPCODES, 'OPCODE', 16);

export function qtypeName(n: number): string {
  return QTYPES.name(n);
}
export function qtypeBytes(n: number): Buffer {
  return QTYPES.encoded(n);
}
export function qclassName(n: number): string {
  return QCLASSES.name(n);
}
export function qclassBytes(n: number): Buffer {
  return QCLASSES.encoded(n);
}
export function rcodeName(n: number): string {
  return RCODES_TABLE.name(n);
}
export function rcodeBytes(n: number): Buffer {
  return RCODES_TABLE.encoded(n);
}
export function opcodeName(n: number): string {
  return OPCODES_TABLE.name(n);
}
export function opcodeBytes(n: number): Buffer {
  return OPCODES_TABLE.encoded(n);
}
