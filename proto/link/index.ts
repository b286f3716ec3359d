// Link protocol (agent -> enricher) public surface: frame decoding, the Batch codec, the
// control messages, the handshake, limits and errors. Spec: LINK.md next to this file.
// Tests may import the individual modules directly.

export { BatchEncoder, type BatchEncoderOptions, markResent } from './batch-encoder';
export { BatchView, decodeBatch, type RecordHandler, recordIdPrefix } from './batch-view';
export {
  Accepts,
  type ControlMessageType,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_KEEPALIVE_INTERVAL_MS,
  DEFAULT_MAX_IN_FLIGHT_BATCHES,
  DNSTAP_CONTENT_TYPE,
  isTransientReject,
  isValidId,
  KEEPALIVE_MISSES,
  MAX_AGENT_ID_LENGTH,
  MAX_AUTH_TOKEN_LENGTH,
  MAX_CONTROL_BODY,
  MAX_FRAME_SIZE_RANGE,
  MAX_LINK_FRAME,
  MAX_RECORD_SIZE,
  MessageType,
  type MessageTypeCode,
  messageTypeName,
  PROTOCOL_VERSION,
  RESENT_MARK_BYTES,
  RejectCode,
  rejectCodeName,
  typeMask,
} from './constants';
export {
  type ControlInit,
  type ControlMessages,
  decodeControl,
  encodeControl,
  type Hello,
  type Reject,
  type Welcome,
} from './control';
export { LinkFrameDecoder, type LinkFrameDecoderOptions, type LinkFrameHandler } from './decoder';
export { isLinkProtocolError, LinkErrorCode, LinkProtocolError } from './errors';
export {
  type AgentHandshakeSettings,
  type AgreedLink,
  checkWelcome,
  EnricherHandshake,
  type EnricherHandshakeSettings,
  makeHello,
} from './handshake';
