// Frame Streams (fstrm) public surface: decoding (incremental, zero-copy), encoding
// (single frames and packed batches), receiver and sender session state machines, and
// capture-file reading and writing. Tests may import the individual modules directly.

export {
  ControlType,
  type ControlTypeCode,
  DEFAULT_MAX_DATA_FRAME_SIZE,
  DNSTAP_CONTENT_TYPE,
  MAX_CONFIGURABLE_DATA_FRAME_SIZE,
  MAX_CONTROL_FRAME_SIZE,
} from './constants';
export { type ControlFrame, decodeControlFrame, encodeControlFrame } from './control';
export {
  type DataFrameHandler,
  type DataRunHandler,
  FrameDecoder,
  type FrameDecoderOptions,
  type FrameDecoderStats,
} from './decoder';
export { encodeDataFrame, FramePacker, writeDataFrameInto } from './encoder';
export { FramestreamError, FramestreamErrorCode, isFramestreamError } from './errors';
export { type ReadFrameStreamFileResult, readFrameStreamFile } from './file';
export { ReaderSession, type ReaderState } from './reader';
export { encodeFrameStreamFile, FrameFileWriter, WriterSession, type WriterState } from './writer';
