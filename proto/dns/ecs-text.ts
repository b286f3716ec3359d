// EDNS Client Subnet as CSV text, "address/source-prefix": IPv4 dotted decimal, IPv6 in the
// RFC 5952 canonical form (proto/net/ip-text.ts).
// The scope prefix is not part of the text. Written straight into the output buffer; the
// caller ensures ECS_TEXT_MAX_LENGTH bytes of room and calls this only when view.hasEcs.

import { writeIpv4Text, writeIpv6Text, writeSmallDecimal } from '../net/ip-text';
import type { DnsView } from './view';

/** "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128". */
export const ECS_TEXT_MAX_LENGTH = 43;

const SLASH = 0x2f;

/** Writes the ECS text at dst[pos..] and returns the position after it. */
export function writeEcsText(view: DnsView, dst: Buffer, pos: number): number {
  const a = view.ecsAddress;
  pos = view.ecsFamily === 1 ? writeIpv4Text(a, 0, dst, pos) : writeIpv6Text(a, 0, dst, pos);
  dst[pos++] = SLASH;
  return writeSmallDecimal(view.ecsSourcePrefix, dst, pos);
}

/** The ECS text as a string (allocates; for logs and tests). */
export function ecsText(view: DnsView): string {
  const tmp = Buffer.allocUnsafe(ECS_TEXT_MAX_LENGTH);
  return tmp.toString('latin1', 0, writeEcsText(view, tmp, 0));
}
