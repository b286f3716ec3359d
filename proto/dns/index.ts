// The DNS message parser's public surface: parse one message into a reused DnsView, print
// its fields for the CSV. Internals (cursor, name reader) are importable by tests only.

export { ANSWERS_TEXT_SLACK, AnswersWriter, flagsTextBytes } from './answers';
export { Cursor } from './cursor';
export { ECS_TEXT_MAX_LENGTH, ecsText, writeEcsText } from './ecs-text';
export { DnsErrorCode, DnsParseError, isDnsParseError } from './errors';
export {
  opcodeBytes,
  opcodeName,
  QTYPES,
  qclassBytes,
  qclassName,
  qtypeBytes,
  qtypeName,
  RCODES_TABLE,
  rcodeBytes,
  rcodeName,
} from './mnemonics';
export { nameToString, writeNameText } from './name';
export { parseDnsMessage, tryParseDnsMessage } from './parser';
export { DnsView, NAME_BUF_SIZE } from './view';
