// "Minimise at the edge" (issue 9 step 1): with --mask-client-ipv4/-ipv6 (and --drop-ecs) the
// agent rewrites the client's address bytes in place in each dnstap frame, before the frame
// is batched, so neither the spool nor the link nor anything after them ever holds the full
// address. The rule of which address is the client's is the enricher's (proto/dnstap
// queryAddressIsClient; enricher/pipeline/privacy.ts documents it):
//   - query_address, for every message type but RESOLVER_* and FORWARDER_* (there it is the
//     resolver itself);
//   - Policy.value when Policy.match is CLIENT_IP (4 or 16 bytes; anything else is zeroed);
//   - the EDNS Client Subnet option in query_message and response_message: its ADDRESS bits
//     past the mask are zeroed. The option keeps its SOURCE PREFIX-LENGTH, because RFC 7871
//     ties the number of address octets to it and the frame's lengths cannot change in place
//     (the enricher's own --mask-client-* lowers the prefix in the `ecs` column). With
//     --drop-ecs the option becomes an all-zero Padding option (RFC 7830, code 12): the DNS
//     message stays valid and carries no subnet, and the `ecs` column is empty.
// An ECS option that the DNS parser rejects (malformed) is not found and not rewritten; the
// enricher rejects it too and never writes it.
//
// The enricher's policy lookups (tenant = longest prefix of the client address) then see the
// masked address: a policy network longer than the mask cannot match (README "Privacy").
//
// Frames that cannot be decoded as dnstap carry addresses we cannot find: they are dropped and
// counted (reason `undecodable`) instead of being relayed unmasked.

import { DnsView, tryParseDnsMessage } from '../proto/dns/index';
import { ABSENT, DnstapView, decodeDnstap, PolicyMatch, queryAddressIsClient } from '../proto/dnstap/index';
import { ClientMask } from '../proto/net/index';

/** EDNS Padding option code (RFC 7830), what a dropped ECS option becomes. */
const OPTION_PADDING = 12;

export interface EdgeMaskOptions {
  maskClientIpv4: number;
  maskClientIpv6: number;
  dropEcs: boolean;
}

export class EdgeMask {
  private readonly view = new DnstapView();
  private readonly dns = new DnsView();
  private readonly mask: ClientMask | null;
  private readonly dropEcs: boolean;
  private constructor(o: EdgeMaskOptions) {
    this.mask = ClientMask.from(o);
    this.dropEcs = o.dropEcs;
  }

  /** The masker for these options, or null when they keep every byte. */
  static from(o: EdgeMaskOptions): EdgeMask | null {
    const m = new EdgeMask(o);
    return m.mask === null && !m.dropEcs ? null : m;
  }

  /**
   * Rewrites the frame buf[start, end) in place. False when it is not a decodable dnstap
   * frame (the caller drops it: its addresses cannot be found).
   */
  apply(buf: Buffer, start: number, end: number): boolean {
    const v = this.view;
    try {
      decodeDnstap(buf, start, end, v);
    } catch {
      return false;
    }
    const mask = this.mask;
    if (mask !== null) {
      if (v.queryAddressOff !== ABSENT && queryAddressIsClient(v.type))
        mask.applyInPlace(buf, v.queryAddressOff, v.queryAddressLen);
      if (v.policyValueOff !== ABSENT && v.policyMatch === PolicyMatch.CLIENT_IP)
        mask.applyInPlace(buf, v.policyValueOff, v.policyValueLen);
    }
    if (v.queryMessageOff !== ABSENT) this.ecs(buf, v.queryMessageOff, v.queryMessageLen);
    if (v.responseMessageOff !== ABSENT) this.ecs(buf, v.responseMessageOff, v.responseMessageLen);
    return true;
  }

  private ecs(buf: Buffer, off: number, len: number): void {
    // No additional records, no OPT RR: skip the parse (half the cost on such traffic).
    if (len < 12 || (buf[off + 10]! | buf[off + 11]!) === 0) return;
    const d = this.dns;
    // A message broken after its OPT RR still has a validated ECS (partial results).
    tryParseDnsMessage(buf, off, off + len, d);
    if (!d.hasEcs) return;
    const o = d.ecsOptionOff;
    const optLen = (buf[o + 2]! << 8) | buf[o + 3]!;
    if (this.dropEcs) {
      buf[o] = OPTION_PADDING >> 8;
      buf[o + 1] = OPTION_PADDING & 0xff;
      buf.fill(0, o + 4, o + 4 + optLen);
    } else if (this.mask !== null) {
      this.mask.applyEcsInPlace(buf, o + 8, optLen - 4, d.ecsFamily);
    }
  }
}
