// DnsView: what Snowtap reads from one wire-format DNS message (RFC 1035), reused
// across messages. The question name is written to `name` in presentation format
// (lower-cased, RFC 1035 escapes, no trailing dot, the root is "."), as bytes.

export const NAME_BUF_SIZE = 1024; // 255 wire bytes * 4 ("\DDD") fits easily

export class DnsView {
  id = 0;
  /** QR bit set. */
  isResponse = false;
  opcode = 0;
  /** The 16-bit header flags word as on the wire (QR, OPCODE, AA TC RD RA Z AD CD, RCODE). */
  flags = 0;
  /** Full RCODE: header 4 bits, plus the EDNS extended bits when an OPT RR is present. */
  rcode = 0;
  qdcount = 0;
  ancount = 0;
  nscount = 0;
  arcount = 0;
  /** False when the message had no question (qdcount 0). */
  hasQuestion = false;
  qtype = 0;
  qclass = 0;
  /** Presentation-format question name bytes are name[0..nameLen). */
  readonly name: Buffer = Buffer.alloc(NAME_BUF_SIZE);
  nameLen = 0;
  /**
   * True when the name text holds no byte a CSV writer must quote for: no `,`, and no `\`
   * (so no escape at all). Such a name is written to a CSV field as it is.
   */
  nameCsvPlain = true;
  /** Offsets in `name` where each label starts (label boundaries for suffix lookups). */
  readonly labelStarts: Int32Array = new Int32Array(128);
  labelCount = 0;
  hasOpt = false;
  /** OPT RR CLASS: the requestor's UDP payload size (RFC 6891 §6.1.2); valid when hasOpt. */
  ednsUdpSize = 0;
  /** DNSSEC OK bit of the OPT TTL (RFC 3225); valid when hasOpt. */
  ednsDo = false;
  /**
   * Absolute index (in the parsed buffer) of the first byte of the message and of the answer
   * section, so the answers can be rendered later, only when that column is written (answers.ts).
   * answersOff is -1 unless the question section and every answer RR were walked in bounds.
   */
  msgStart = 0;
  answersOff = -1;
  /** EDNS Client Subnet (RFC 7871), when present. */
  hasEcs = false;
  ecsFamily = 0; // 1 = IPv4, 2 = IPv6
  ecsSourcePrefix = 0;
  ecsScopePrefix = 0;
  /** Address bytes, zero-padded to 16; only the first ceil(sourcePrefix/8) are meaningful. */
  readonly ecsAddress: Buffer = Buffer.alloc(16);
  /**
   * Absolute index (in the parsed buffer) of the ECS option's code, when hasEcs: the option
   * is OPTION-CODE, OPTION-LENGTH, FAMILY, SOURCE, SCOPE, ADDRESS (the agent rewrites it in place).
   */
  ecsOptionOff = -1;
  /** Total message length in bytes. */
  size = 0;

  reset(): void {
    this.id = 0;
    this.isResponse = false;
    this.opcode = 0;
    this.flags = 0;
    this.rcode = 0;
    this.qdcount = 0;
    this.ancount = 0;
    this.nscount = 0;
    this.arcount = 0;
    this.hasQuestion = false;
    this.qtype = 0;
    this.qclass = 0;
    this.nameLen = 0;
    this.nameCsvPlain = true;
    this.labelCount = 0;
    this.hasOpt = false;
    this.ednsUdpSize = 0;
    this.ednsDo = false;
    this.msgStart = 0;
    this.answersOff = -1;
    // The parser sets the ECS fields (all 16 address bytes) only together with hasEcs: unless
    // the last message had ECS they still hold their reset values, so they are reset only then.
    if (this.hasEcs) this.resetEcs();
    this.size = 0;
  }

  private resetEcs(): void {
    this.hasEcs = false;
    this.ecsFamily = 0;
    this.ecsSourcePrefix = 0;
    this.ecsScopePrefix = 0;
    this.ecsOptionOff = -1;
    // A loop, not fill(0): fill() crosses into C++ and cost ~30 ns per message in bench-dns.
    const ecs = this.ecsAddress;
    for (let i = 0; i < 16; i++) ecs[i] = 0;
  }
}
