// Public surface of proto/dnstap: the lazy decoder and its view, its errors, and the
// encoder for synthetic traffic. The protobufjs reference (schema.ts) is deliberately not
// here: import './schema' directly where it is wanted (tests, tools).

export { decodeDnstap, requireTypes } from './decoder';
export { DnstapEncoder, type DnstapFields } from './encoder';
export { DnstapDecodeError, DnstapErrorCode, isDnstapDecodeError } from './errors';
export {
  ABSENT,
  DnstapView,
  HTTP_PROTOCOL_NAMES,
  isResponseType,
  MESSAGE_TYPE_NAMES,
  MessageType,
  POLICY_ACTION_NAMES,
  POLICY_MATCH_NAMES,
  PolicyMatch,
  queryAddressIsClient,
  SOCKET_FAMILY_NAMES,
  SOCKET_PROTOCOL_NAMES,
} from './view';
