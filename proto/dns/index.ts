// The DNS message parser's public surface: parse one message into a reused DnsView, print
// its fields for the CSV. Internals (cursor, name reader) are importable by tests only.

export { ECS_TEXT_MAX_LENGTH, ecsText, writeEcsText } from './ecs-text';
export { DnsErrorCode, DnsParseError, isDnsParseError } from './errors';
export {
  opcodeName,
  qclassBytes,
  qclassName,
  qtypeBytes,
  qtypeName,
  rcodeBytes,
  rcodeName,
} from './mnemonics';
export { nameToString } from './name';
export { parseDnsMessage, tryParseDnsMessage } from './parser';
export { DnsView, NAME_BUF_SIZE } from './view';
