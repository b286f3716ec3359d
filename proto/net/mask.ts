// Client address truncation by prefix (issue 9 step 1): keep the first BITS of an IPv4 or
// IPv6 address, zero the rest. Shared by the enricher (masked copies while a row is written,
// enricher/pipeline/privacy.ts) and the agent (in place in the dnstap frame, agent/edge-mask.ts)
// so that both apply the same rule. An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is an IPv4
// client: its last 32 bits get the IPv4 mask, so a dual-stack socket does not leak the IPv4
// address past an IPv6 mask.

import { checkInt } from '../kit/index';

/** Nothing masked: every bit kept. */
export const MASK_DEFAULTS = { maskClientIpv4: 32, maskClientIpv6: 128 } as const;

export const MASK_RANGES = {
  maskClientIpv4: { min: 0, max: 32 },
  maskClientIpv6: { min: 0, max: 128 },
} as const;

export function isV4Mapped(a: Uint8Array, off: number): boolean {
  for (let i = 0; i < 10; i++) if (a[off + i] !== 0) return false;
  return a[off + 10] === 0xff && a[off + 11] === 0xff;
}

/** Zeroes every bit of dst[off, off+len) after the first `bits`. */
export function keepBits(dst: Uint8Array, off: number, len: number, bits: number): void {
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

  /** The mask for these widths, or null when it keeps every bit. */
  static from(o: { maskClientIpv4?: number; maskClientIpv6?: number }): ClientMask | null {
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
    this.applyInPlace(dst, 0, len);
  }

  /** Masks the address buf[off, off+len) where it is (other lengths than 4 and 16: zeroed). */
  applyInPlace(buf: Uint8Array, off: number, len: number): void {
    if (len === 4) keepBits(buf, off, 4, this.ipv4Bits);
    else if (len === 16) {
      if (isV4Mapped(buf, off)) keepBits(buf, off + 12, 4, this.ipv4Bits);
      else keepBits(buf, off, 16, this.ipv6Bits);
    } else buf.fill(0, off, off + len);
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

  /**
   * Masks the ADDRESS of an ECS option in place in a DNS message: `len` octets (the option's
   * truncated address) of `family` at buf[off..]. The SOURCE PREFIX-LENGTH cannot be lowered
   * in place (RFC 7871 ties the octet count to it), so only the bits are zeroed.
   */
  applyEcsInPlace(buf: Uint8Array, off: number, len: number, family: number): void {
    if (family === 1) keepBits(buf, off, len, this.ipv4Bits);
    else if (len === 16 && isV4Mapped(buf, off)) keepBits(buf, off + 12, 4, this.ipv4Bits);
    else keepBits(buf, off, len, this.ipv6Bits);
  }
}
