// Frame Streams wire constants and the limits Snowtap enforces on them.
//
// Wire summary (https://farsightsec.github.io/fstrm/, libfstrm control.c):
//   data frame    = be32 length (> 0) | payload
//   control frame = be32 0 (escape) | be32 control length | be32 control type | fields
//   field         = be32 field type | be32 field length | field bytes
// The control length counts the type and the fields, not the escape or itself.

/** Control frame types. */
export const ControlType = {
  ACCEPT: 0x01,
  START: 0x02,
  STOP: 0x03,
  READY: 0x04,
  FINISH: 0x05,
} as const;

export type ControlTypeCode = (typeof ControlType)[keyof typeof ControlType];

/** Index = control type code; used in error messages and logs. */
export const CONTROL_TYPE_NAMES: readonly string[] = ['', 'ACCEPT', 'START', 'STOP', 'READY', 'FINISH'];

/** Printable name of a control type, `UNKNOWN(0x..)` for codes outside the protocol. */
export function controlTypeName(type: number): string {
  if (type >= ControlType.ACCEPT && type <= ControlType.FINISH) return CONTROL_TYPE_NAMES[type]!;
  return `UNKNOWN(0x${(type >>> 0).toString(16)})`;
}

/** True when `type` is one of the five control types the protocol defines. */
export function isControlType(type: number): type is ControlTypeCode {
  return type >= ControlType.ACCEPT && type <= ControlType.FINISH;
}

/** The only control field type the protocol defines. */
export const CONTROL_FIELD_CONTENT_TYPE = 0x01;

/** A frame length of zero is not an empty data frame: it announces a control frame. */
export const ESCAPE = 0;

/** Every length and type on the wire is a 32-bit big-endian integer. */
export const U32_SIZE = 4;

/** Bytes before a data frame's payload (its length). */
export const DATA_FRAME_HEADER_SIZE = 4;

/** Bytes before a control frame's control length counts anything (escape + control length). */
export const CONTROL_FRAME_HEADER_SIZE = 8;

/** Control type (4) — the smallest possible control length value. */
export const MIN_CONTROL_LENGTH = 4;

/** Field type (4) + field length (4). */
export const CONTROL_FIELD_HEADER_SIZE = 8;

/**
 * Largest control length value accepted on decode (libfstrm FSTRM_CONTROL_FRAME_LENGTH_MAX).
 * libfstrm's encoder applies the same number to the whole frame including the 8 header bytes,
 * so our encoder does too: everything we send is accepted by every implementation.
 */
export const MAX_CONTROL_FRAME_SIZE = 512;

/** Longest content type string (libfstrm FSTRM_CONTROL_FIELD_CONTENT_TYPE_LENGTH_MAX). */
export const MAX_CONTENT_TYPE_LENGTH = 256;

/**
 * Default limit for one data frame's payload. A TCP DNS message alone may be 64 KiB and a
 * dnstap response can carry both query and response, so 1 MiB leaves ample room; larger
 * frames are skipped and counted, not fatal (golang-framestream DEFAULT_MAX_PAYLOAD_SIZE).
 */
export const DEFAULT_MAX_DATA_FRAME_SIZE = 1024 * 1024;

/**
 * Upper bound for a configured data frame limit: the decoder must be able to hold one whole
 * frame in memory, so the limit is also the worst-case buffer size per connection.
 */
export const MAX_CONFIGURABLE_DATA_FRAME_SIZE = 256 * 1024 * 1024;

/** Content type of dnstap payloads (dnstap.proto). */
export const DNSTAP_CONTENT_TYPE = 'protobuf:dnstap.Dnstap';

/** Block size for reading capture files: large reads amortise syscalls and promise hops. */
export const DEFAULT_FILE_BLOCK_SIZE = 1024 * 1024;

/** Initial size of the decoder's carry-over buffer; it grows on demand up to one frame. */
export const DECODER_INITIAL_BUFFER_SIZE = 16 * 1024;

/** Default size of one packed batch of data frames for senders. */
export const DEFAULT_PACKER_CAPACITY = 256 * 1024;
