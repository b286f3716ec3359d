// link.proto loaded with protobufjs reflection. Used to encode and decode the control
// messages (control.ts: rare, so an object per message is fine) and, in tests, as the
// independent reference for the hand-written Batch codec (batch-encoder.ts, batch-view.ts).

import fs from 'node:fs';
import path from 'node:path';
import { type Enum, loadSync, type Root, type Type } from 'protobufjs';
import { type ControlMessageType, MessageType, type MessageTypeCode } from './constants';

export const LINK_PROTO_FILE = 'link.proto';

/**
 * Where link.proto is: next to the compiled module (the build copies it to
 * dist/proto/link/), else in the source tree when running from dist/ without that copy.
 */
export function linkProtoPath(): string {
  const beside = path.join(__dirname, LINK_PROTO_FILE);
  if (fs.existsSync(beside)) return beside;
  const source = path.resolve(__dirname, '../../../proto/link', LINK_PROTO_FILE);
  if (fs.existsSync(source)) return source;
  throw new Error(`link schema not found: looked for ${beside} and ${source}`);
}

/** The schema, with every type reference resolved at load. */
export const linkRoot: Root = loadSync(linkProtoPath());
linkRoot.resolveAll();

const t = (name: string): Type => linkRoot.lookupType(`snowtap.link.${name}`);

export const HelloType: Type = t('Hello');
export const WelcomeType: Type = t('Welcome');
export const RejectType: Type = t('Reject');
export const BatchType: Type = t('Batch');
export const AckType: Type = t('Ack');
export const DrainType: Type = t('Drain');
export const PingType: Type = t('Ping');
export const PongType: Type = t('Pong');
export const GoodbyeType: Type = t('Goodbye');
export const RejectCodeEnum: Enum = linkRoot.lookupEnum('snowtap.link.Reject.Code');

const BY_TYPE: Record<MessageTypeCode, Type> = {
  [MessageType.HELLO]: HelloType,
  [MessageType.WELCOME]: WelcomeType,
  [MessageType.REJECT]: RejectType,
  [MessageType.BATCH]: BatchType,
  [MessageType.ACK]: AckType,
  [MessageType.DRAIN]: DrainType,
  [MessageType.PING]: PingType,
  [MessageType.PONG]: PongType,
  [MessageType.GOODBYE]: GoodbyeType,
};

/** The protobufjs Type of a message type byte. */
export function schemaOf(type: MessageTypeCode | ControlMessageType): Type {
  return BY_TYPE[type];
}
