// Client address minimisation for the CSV (issue 9 step 1, enricher side): truncation of the
// client's address to a prefix (--mask-client-ipv4 BITS, --mask-client-ipv6 BITS), the same
// for the EDNS Client Subnet (or --drop-ecs). Applied while a row is written, i.e. after the
// policy lookups, which need the real address (tenant = longest prefix of the client address).
// The frame bytes are never modified: masked copies go through a 16-byte scratch.
//
// Which columns hold a client address, by dnstap message type (dnstap.proto: query_address is
// "the network address of the initiator of the DNS query"):
//   CLIENT_*, AUTH_*, STUB_*, TOOL_*, UPDATE_*, unknown types: query_address is the client
//     (for AUTH_* the resolver asking the authoritative server, its client) -> masked;
//   RESOLVER_*, FORWARDER_*: query_address is the resolver / forwarder itself, sending
//     upstream; it is not a client's address and stays as it is;
//   response_address is the responder (the DNS server or the upstream) for every type: kept.
//   Every type: `ecs` (the client's subnet, which resolvers forward upstream) is masked or
//   dropped, and dnstap_policy_value when the policy matched on CLIENT_IP.
// An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is an IPv4 client: its last 32 bits get the
// IPv4 mask, so a dual-stack socket does not leak the IPv4 address past an IPv6 mask.

import { MessageType } from '../../proto/dnstap/index';
import { checkInt } from '../../proto/kit/index';

export interface PrivacyOptions {
  /** Keep this many leading bits of IPv4 client addresses (0-32); undefined = keep all. */
  maskClientIpv4?: number;
  /** Keep this many leading bits of IPv6 client addresses (0-128); undefined = keep all. */
  maskClientIpv6?: number;
  /** Leave the ecs column empty. */
  dropEcs?: boolean;
}

/** Library defaults: nothing masked, ECS kept. */
export const PRIVACY_DEFAULTS = { maskClientIpv4: 32, maskClientIpv6: 128, dropEcs: false } as const;

export const PRIVACY_RANGES = {
  maskClientIpv4: { min: 0, max: 32 },
  maskClientIpv6: { min: 0, max: 128 },
} as const;

/** Message types whose query_address is a client's address (see the header). */
export function queryAddressIsClient(type: number): boolean {
  return !(
    type === MessageType.RESOLVER_QUERY ||
    type === MessageType.RESOLVER_RESPONSE ||
    type === MessageType.FORWARDER_QUERY ||
    type === MessageType.FORWARDER_RESPONSE
  );
}

function isV4Mapped(a: Uint8Array, off: number): boolean {
  for (let i = 0; i < 10; i++) if (a[off + i] !== 0) return false;
  return a[off + 10] === 0xff && a[off + 11] === 0xff;
}

/** Zeroes every bit of dst[off, off+len) after the first `bits`. */
function keepBits(dst: Uint8Array, off: number, len: number, bits: number): void {
  for (let i = 0; i < len; i++) {
    const from = i * 8;
    if (from + 8 <= bits) continue;
    dst[off + i] = from >= bits ? 0 : dst[off + i]! & (0xff << (8 - (bits - from)));
  }
}

export class ClientMask {
  constructor(
    readonly ipv4Bits: number,
    readonly ipv6Bits: number,
  ) {
    for (const [name, v, max] of [
      ['maskClientIpv4', ipv4Bits, 32],
      ['maskClientIpv6', ipv6Bits, 128],
    ] as const) {
      checkInt(name, v, 0, max, (m) => new RangeError(m));
    }
  }

  /** The mask for `o`, or null when it keeps every bit. */
  static from(o: PrivacyOptions): ClientMask | null {
    const v4 = o.maskClientIpv4 ?? 32;
    const v6 = o.maskClientIpv6 ?? 128;
    return v4 === 32 && v6 === 128 ? null : new ClientMask(v4, v6);
  }

  /**
   * Copies the address src[off, off+len) masked into dst[0, len). Lengths other than 4 and
   * 16 are not addresses we can mask by prefix: they come out as zeros.
   */
  apply(src: Uint8Array, off: number, len: number, dst: Uint8Array): void {
    for (let i = 0; i < len; i++) dst[i] = src[off + i]!;
    if (len === 4) keepBits(dst, 0, 4, this.ipv4Bits);
    else if (len === 16) {
      if (isV4Mapped(dst, 0)) keepBits(dst, 12, 4, this.ipv4Bits);
      else keepBits(dst, 0, 16, this.ipv6Bits);
    } else dst.fill(0, 0, len);
  }

  /**
   * Masks an ECS address in place (16 bytes, family 1 or 2) and returns the prefix length to
   * write: the source prefix, lowered to the mask.
   */
  applyEcs(address: Uint8Array, family: number, source: number): number {
    if (family === 1) {
      keepBits(address, 0, 4, this.ipv4Bits);
      return Math.min(source, this.ipv4Bits);
    }
    if (isV4Mapped(address, 0) && source >= 96) {
      keepBits(address, 12, 4, this.ipv4Bits);
      return Math.min(source, 96 + this.ipv4Bits);
    }
    keepBits(address, 0, 16, this.ipv6Bits);
    return Math.min(source, this.ipv6Bits);
  }
}
