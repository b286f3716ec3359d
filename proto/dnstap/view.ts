// DnstapView: the fields of one dnstap.Dnstap payload that Snowtap outputs, decoded
// lazily in place. Byte fields are (offset, length) pairs into `buf`; nothing is copied,
// so one view is reused for every frame on the hot path.

export const ABSENT = -1;

/** dnstap.Message.Type values (dnstap.proto). */
export const MessageType = {
  AUTH_QUERY: 1,
  AUTH_RESPONSE: 2,
  RESOLVER_QUERY: 3,
  RESOLVER_RESPONSE: 4,
  CLIENT_QUERY: 5,
  CLIENT_RESPONSE: 6,
  FORWARDER_QUERY: 7,
  FORWARDER_RESPONSE: 8,
  STUB_QUERY: 9,
  STUB_RESPONSE: 10,
  TOOL_QUERY: 11,
  TOOL_RESPONSE: 12,
  UPDATE_QUERY: 13,
  UPDATE_RESPONSE: 14,
} as const;

/** Index = enum value; names as in dnstap.proto. Unknown values print as the number. */
export const MESSAGE_TYPE_NAMES: readonly string[] = [
  '',
  'AUTH_QUERY',
  'AUTH_RESPONSE',
  'RESOLVER_QUERY',
  'RESOLVER_RESPONSE',
  'CLIENT_QUERY',
  'CLIENT_RESPONSE',
  'FORWARDER_QUERY',
  'FORWARDER_RESPONSE',
  'STUB_QUERY',
  'STUB_RESPONSE',
  'TOOL_QUERY',
  'TOOL_RESPONSE',
  'UPDATE_QUERY',
  'UPDATE_RESPONSE',
];
export const HTTP_PROTOCOL_NAMES: readonly string[] = ['', 'HTTP1', 'HTTP2', 'HTTP3'];
export const SOCKET_FAMILY_NAMES: readonly string[] = ['', 'INET', 'INET6'];
export const SOCKET_PROTOCOL_NAMES: readonly string[] = [
  '',
  'UDP',
  'TCP',
  'DOT',
  'DOH',
  'DNSCryptUDP',
  'DNSCryptTCP',
  'DOQ',
];

/** dnstap.Policy.Action values (index = enum value). Unknown values print as the number. */
export const POLICY_ACTION_NAMES: readonly string[] = [
  '',
  'NXDOMAIN',
  'NODATA',
  'PASS',
  'DROP',
  'TRUNCATE',
  'LOCAL_DATA',
];
/** dnstap.Policy.Match values. */
export const PolicyMatch = { QNAME: 1, CLIENT_IP: 2, RESPONSE_IP: 3, NS_NAME: 4, NS_IP: 5 } as const;
export const POLICY_MATCH_NAMES: readonly string[] = [
  '',
  'QNAME',
  'CLIENT_IP',
  'RESPONSE_IP',
  'NS_NAME',
  'NS_IP',
];

/** True for the *_RESPONSE message types (even enum values). */
export function isResponseType(type: number): boolean {
  return type > 0 && type % 2 === 0;
}

export class DnstapView {
  buf: Buffer = Buffer.alloc(0);
  // Dnstap
  identityOff = ABSENT;
  identityLen = 0;
  versionOff = ABSENT;
  versionLen = 0;
  /** Dnstap.extra: opaque annotation bytes, no interpretation. */
  extraOff = ABSENT;
  extraLen = 0;
  /** Dnstap.type (1 = MESSAGE); ABSENT when missing. */
  dnstapType = ABSENT;
  hasMessage = false;
  // Message
  /** Message.type; ABSENT when missing. */
  type = ABSENT;
  socketFamily = ABSENT;
  socketProtocol = ABSENT;
  queryAddressOff = ABSENT;
  queryAddressLen = 0;
  responseAddressOff = ABSENT;
  responseAddressLen = 0;
  queryPort = ABSENT;
  responsePort = ABSENT;
  /** Seconds since the epoch (uint64 read as a double: exact below 2^53). */
  queryTimeSec = ABSENT;
  queryTimeNsec = ABSENT;
  responseTimeSec = ABSENT;
  responseTimeNsec = ABSENT;
  queryMessageOff = ABSENT;
  queryMessageLen = 0;
  responseMessageOff = ABSENT;
  responseMessageLen = 0;
  queryZoneOff = ABSENT;
  queryZoneLen = 0;
  /** Message.http_protocol (1 HTTP1, 2 HTTP2, 3 HTTP3; DoH only); ABSENT when missing. */
  httpProtocol = ABSENT;
  // Message.policy (dnstap.proto Policy: RPZ and similar operator policy)
  hasPolicy = false;
  policyTypeOff = ABSENT;
  policyTypeLen = 0;
  /** Policy.rule: for RPZ the rule's owner name in wire format. */
  policyRuleOff = ABSENT;
  policyRuleLen = 0;
  /** Policy.action (PolicyAction values); ABSENT when missing. */
  policyAction = ABSENT;
  /** Policy.match (PolicyMatch values); ABSENT when missing. */
  policyMatch = ABSENT;
  /** Policy.value: format depends on match (a wire-format name or address bytes). */
  policyValueOff = ABSENT;
  policyValueLen = 0;

  reset(buf: Buffer): void {
    this.buf = buf;
    this.identityOff = ABSENT;
    this.identityLen = 0;
    this.versionOff = ABSENT;
    this.versionLen = 0;
    this.extraOff = ABSENT;
    this.extraLen = 0;
    this.dnstapType = ABSENT;
    this.hasMessage = false;
    this.type = ABSENT;
    this.socketFamily = ABSENT;
    this.socketProtocol = ABSENT;
    this.queryAddressOff = ABSENT;
    this.queryAddressLen = 0;
    this.responseAddressOff = ABSENT;
    this.responseAddressLen = 0;
    this.queryPort = ABSENT;
    this.responsePort = ABSENT;
    this.queryTimeSec = ABSENT;
    this.queryTimeNsec = ABSENT;
    this.responseTimeSec = ABSENT;
    this.responseTimeNsec = ABSENT;
    this.queryMessageOff = ABSENT;
    this.queryMessageLen = 0;
    this.responseMessageOff = ABSENT;
    this.responseMessageLen = 0;
    this.queryZoneOff = ABSENT;
    this.queryZoneLen = 0;
    this.httpProtocol = ABSENT;
    // Only the decoder's Policy reading sets the policy fields, after hasPolicy: unless the
    // last payload had a Policy (rare) they still hold their reset values, so they are reset only then.
    if (this.hasPolicy) this.resetPolicy();
  }

  private resetPolicy(): void {
    this.hasPolicy = false;
    this.policyTypeOff = ABSENT;
    this.policyTypeLen = 0;
    this.policyRuleOff = ABSENT;
    this.policyRuleLen = 0;
    this.policyAction = ABSENT;
    this.policyMatch = ABSENT;
    this.policyValueOff = ABSENT;
    this.policyValueLen = 0;
  }
}

/**
 * Message types whose query_address is a client's address (issue 9 privacy): every type but
 * RESOLVER_* and FORWARDER_*, where query_address is the resolver / forwarder itself sending
 * upstream. response_address is the responder for every type. The enricher's masking and
 * pseudonyms and the agent's in-place masking all follow this rule.
 */
export function queryAddressIsClient(type: number): boolean {
  return !(
    type === MessageType.RESOLVER_QUERY ||
    type === MessageType.RESOLVER_RESPONSE ||
    type === MessageType.FORWARDER_QUERY ||
    type === MessageType.FORWARDER_RESPONSE
  );
}
