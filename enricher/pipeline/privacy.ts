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
//
// The same rule (proto/dnstap queryAddressIsClient, proto/net ClientMask) runs in the agent
// with --mask-client-ipv4/-ipv6 there (agent/edge-mask.ts): then the frame itself is rewritten
// before the spool and the link, and the enricher's policy lookups see the masked address.

import { MASK_DEFAULTS, MASK_RANGES } from '../../proto/net/index';

export { queryAddressIsClient } from '../../proto/dnstap/index';
export { ClientMask } from '../../proto/net/index';

export interface PrivacyOptions {
  /** Keep this many leading bits of IPv4 client addresses (0-32); undefined = keep all. */
  maskClientIpv4?: number;
  /** Keep this many leading bits of IPv6 client addresses (0-128); undefined = keep all. */
  maskClientIpv6?: number;
  /** Leave the ecs column empty. */
  dropEcs?: boolean;
}

/** Library defaults: nothing masked, ECS kept. */
export const PRIVACY_DEFAULTS = { ...MASK_DEFAULTS, dropEcs: false } as const;

export const PRIVACY_RANGES = MASK_RANGES;
