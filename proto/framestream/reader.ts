// Receiver-side Frame Streams session: a pure state machine. The owner feeds it the
// control frames and data frames its FrameDecoder produced; it answers with the bytes to
// send back (ACCEPT, FINISH) and throws a FramestreamError when the peer breaks the
// protocol, after which the owner closes the connection.
//
//   bidirectional:  READY(types) -> ACCEPT(ours) ; START(type) ; data* ; STOP -> FINISH
//   unidirectional: START(type) ; data* ; STOP                (no replies)
//   file:           START(type) ; data* ; STOP ; EOF
//
// In stream mode the direction is taken from the first control frame (READY or START).
// A READY or START without any content type is accepted, as libfstrm does; one that names
// content types must name ours.

import { ControlType, controlTypeName, DNSTAP_CONTENT_TYPE } from './constants';
import type { ControlFrame } from './control';
import { encodeAccept, encodeFinish } from './encoder';
import { FramestreamError, FramestreamErrorCode, rejectUnknownOptions } from './errors';

export type ReaderMode = 'stream' | 'file';

export type ReaderState =
  /** Stream mode, nothing received yet: READY (bidirectional) or START (unidirectional). */
  | 'awaiting-ready-or-start'
  /** After READY/ACCEPT, or file mode from the beginning. */
  | 'awaiting-start'
  /** After START: data frames are valid. */
  | 'streaming'
  /** After STOP: nothing more is valid; a clean end of input may follow. */
  | 'finished'
  /** A protocol violation was thrown; every further call rethrows it. */
  | 'failed';

export interface ReaderSessionOptions {
  /** 'stream' for sockets (default), 'file' for capture files (START first, no replies). */
  mode?: ReaderMode;
  /** The content type we accept. Default: dnstap. */
  contentType?: string;
}

const OPTION_KEYS = ['mode', 'contentType'] as const;

export class ReaderSession {
  readonly mode: ReaderMode;
  readonly contentType: string;
  state: ReaderState;
  /** True after READY, false after a START-first stream or a file, null before either. */
  bidirectional: boolean | null = null;
  /** Data frames accepted. */
  dataFrames = 0;
  private readonly accept: Buffer;
  private failure: FramestreamError | null = null;

  constructor(options: ReaderSessionOptions = {}) {
    rejectUnknownOptions('ReaderSession', options, OPTION_KEYS);
    const mode = options.mode ?? 'stream';
    if (mode !== 'stream' && mode !== 'file') {
      throw new FramestreamError(
        FramestreamErrorCode.INVALID_ARGUMENT,
        `ReaderSession: mode must be "stream" or "file", got ${JSON.stringify(mode)}`,
      );
    }
    this.mode = mode;
    this.contentType = options.contentType ?? DNSTAP_CONTENT_TYPE;
    // Encoded once: validates the content type now rather than at the first READY.
    this.accept = encodeAccept([this.contentType]);
    this.state = mode === 'file' ? 'awaiting-start' : 'awaiting-ready-or-start';
  }

  /** True while data frames are valid. */
  get streaming(): boolean {
    return this.state === 'streaming';
  }

  /**
   * Applies a decoded control frame. Returns the bytes to send to the peer (ACCEPT after
   * READY, FINISH after STOP on a bidirectional stream) or null when nothing is due.
   */
  onControl(frame: ControlFrame): Buffer | null {
    if (this.failure !== null) throw this.failure;
    switch (frame.type) {
      case ControlType.READY:
        if (this.state !== 'awaiting-ready-or-start') break;
        this.checkContentTypes(frame);
        this.bidirectional = true;
        this.state = 'awaiting-start';
        return this.accept;
      case ControlType.START:
        if (this.state !== 'awaiting-ready-or-start' && this.state !== 'awaiting-start') break;
        this.checkContentTypes(frame);
        if (this.bidirectional === null) this.bidirectional = false;
        this.state = 'streaming';
        return null;
      case ControlType.STOP:
        // STOP straight after the handshake is a sender shutting down before its first
        // frame: answer FINISH so it is not left waiting for one.
        if (this.state !== 'streaming' && !(this.state === 'awaiting-start' && this.bidirectional)) break;
        this.state = 'finished';
        return this.bidirectional ? encodeFinish() : null;
      default:
        // ACCEPT and FINISH only ever travel towards a sender.
        break;
    }
    throw this.fail(
      FramestreamErrorCode.UNEXPECTED_CONTROL,
      `unexpected ${controlTypeName(frame.type)} control frame in state ${this.state}` +
        (this.mode === 'file' ? ' (file mode)' : ''),
    );
  }

  /** Accounts one data frame; throws FSTRM_UNEXPECTED_DATA outside START..STOP. Hot path. */
  onData(): void {
    if (this.state !== 'streaming') this.rejectData();
    this.dataFrames++;
  }

  /** Accounts `frames` data frames that arrived together (a decoder run); as onData(). */
  onDataRun(frames: number): void {
    if (this.state !== 'streaming') this.rejectData();
    this.dataFrames += frames;
  }

  /**
   * Declares end of input. Returns true when the stream ended cleanly (after STOP). In
   * stream mode an abrupt close is the owner's to count (false); in file mode a file
   * without START or STOP is damaged, so it throws FSTRM_TRUNCATED.
   */
  end(): boolean {
    if (this.failure !== null) throw this.failure;
    if (this.state === 'finished') return true;
    if (this.mode === 'file') {
      throw this.fail(
        FramestreamErrorCode.TRUNCATED,
        this.state === 'streaming'
          ? `file ended without a STOP frame after ${this.dataFrames} data frames`
          : 'file ended before its START frame',
      );
    }
    return false;
  }

  private rejectData(): never {
    if (this.failure !== null) throw this.failure;
    throw this.fail(
      FramestreamErrorCode.UNEXPECTED_DATA,
      this.state === 'finished' ? 'data frame after STOP' : `data frame before START (state ${this.state})`,
    );
  }

  private checkContentTypes(frame: ControlFrame): void {
    const types = frame.contentTypes;
    if (types.length === 0 || types.includes(this.contentType)) return;
    throw this.fail(
      FramestreamErrorCode.CONTENT_TYPE_MISMATCH,
      `${controlTypeName(frame.type)} offers ${types.map((t) => JSON.stringify(t)).join(', ')}, ` +
        `we accept only ${JSON.stringify(this.contentType)}`,
    );
  }

  private fail(code: FramestreamErrorCode, message: string): FramestreamError {
    this.state = 'failed';
    this.failure = new FramestreamError(code, message);
    return this.failure;
  }
}
