// Sender-side Frame Streams session (the mirror of ReaderSession) and a capture-file
// writer. Pure: the session returns the bytes to send and consumes the decoded control
// frames the peer answers with; the file writer hands packed bytes to a sink function.
//
//   bidirectional:  open() -> READY ; ACCEPT -> START ; data* ; stop() -> STOP ; FINISH
//   unidirectional: open() -> START ; data* ; stop() -> STOP

import { ControlType, controlTypeName, DNSTAP_CONTENT_TYPE } from './constants';
import type { ControlFrame } from './control';
import { encodeReady, encodeStart, encodeStop, FramePacker } from './encoder';
import { FramestreamError, FramestreamErrorCode, rejectUnknownOptions } from './errors';

export type WriterState =
  | 'idle'
  | 'awaiting-accept'
  | 'streaming'
  | 'awaiting-finish'
  | 'finished'
  | 'failed';

export interface WriterSessionOptions {
  /** The content type we send. Default: dnstap. */
  contentType?: string;
  /** READY/ACCEPT handshake and FINISH (default true); false for START-first streams. */
  bidirectional?: boolean;
}

const SESSION_KEYS = ['contentType', 'bidirectional'] as const;

export class WriterSession {
  readonly contentType: string;
  readonly bidirectional: boolean;
  state: WriterState = 'idle';
  private failure: FramestreamError | null = null;

  constructor(options: WriterSessionOptions = {}) {
    rejectUnknownOptions('WriterSession', options, SESSION_KEYS);
    this.contentType = options.contentType ?? DNSTAP_CONTENT_TYPE;
    this.bidirectional = options.bidirectional ?? true;
    encodeStart(this.contentType); // validates the content type at construction
  }

  /** True while data frames may be sent. */
  get streaming(): boolean {
    return this.state === 'streaming';
  }

  /** The first bytes to send: READY (bidirectional) or START (unidirectional). */
  open(): Buffer {
    this.expect('idle', 'open()');
    if (this.bidirectional) {
      this.state = 'awaiting-accept';
      return encodeReady([this.contentType]);
    }
    this.state = 'streaming';
    return encodeStart(this.contentType);
  }

  /** Applies a control frame from the receiver; returns START after ACCEPT, else null. */
  onControl(frame: ControlFrame): Buffer | null {
    if (this.failure !== null) throw this.failure;
    if (frame.type === ControlType.ACCEPT && this.state === 'awaiting-accept') {
      const types = frame.contentTypes;
      // An ACCEPT without content types accepts whatever was offered (libfstrm).
      if (types.length > 0 && !types.includes(this.contentType)) {
        throw this.fail(
          FramestreamErrorCode.CONTENT_TYPE_MISMATCH,
          `ACCEPT names ${types.map((t) => JSON.stringify(t)).join(', ')}, not ${JSON.stringify(this.contentType)}`,
        );
      }
      this.state = 'streaming';
      return encodeStart(this.contentType);
    }
    if (frame.type === ControlType.FINISH && this.state === 'awaiting-finish') {
      this.state = 'finished';
      return null;
    }
    throw this.fail(
      FramestreamErrorCode.UNEXPECTED_CONTROL,
      `unexpected ${controlTypeName(frame.type)} control frame in writer state ${this.state}`,
    );
  }

  /** STOP bytes; a bidirectional sender then waits for FINISH before closing. */
  stop(): Buffer {
    this.expect('streaming', 'stop()');
    this.state = this.bidirectional ? 'awaiting-finish' : 'finished';
    return encodeStop();
  }

  private expect(state: WriterState, call: string): void {
    if (this.failure !== null) throw this.failure;
    if (this.state !== state) {
      throw new FramestreamError(
        FramestreamErrorCode.INVALID_STATE,
        `WriterSession.${call} in state ${this.state} (needs ${state})`,
      );
    }
  }

  private fail(code: FramestreamErrorCode, message: string): FramestreamError {
    this.state = 'failed';
    this.failure = new FramestreamError(code, message);
    return this.failure;
  }
}

/** Receives packed bytes; each Buffer is handed over and not touched again by the writer. */
export type ByteSink = (bytes: Buffer) => void;

export interface FrameFileWriterOptions {
  contentType?: string;
  /** Bytes per sink call (packer capacity). */
  capacity?: number;
  maxDataFrameSize?: number;
}

const FILE_KEYS = ['contentType', 'capacity', 'maxDataFrameSize'] as const;

/**
 * Writes a Frame Streams capture file (START, data frames, STOP) through `sink` in large
 * packed blocks. The sink owns what it is given, so an asynchronous stream.write is fine.
 */
export class FrameFileWriter {
  private readonly packer: FramePacker;
  private readonly sink: ByteSink;
  private closed = false;
  /** Data frames written. */
  frames = 0;

  constructor(sink: ByteSink, options: FrameFileWriterOptions = {}) {
    rejectUnknownOptions('FrameFileWriter', options, FILE_KEYS);
    this.sink = sink;
    this.packer = new FramePacker({ capacity: options.capacity, maxDataFrameSize: options.maxDataFrameSize });
    this.packer.appendRaw(encodeStart(options.contentType ?? DNSTAP_CONTENT_TYPE));
  }

  /** Adds one data frame for `payload[start, end)`. */
  write(payload: Uint8Array, start = 0, end: number = payload.length): void {
    if (this.closed)
      throw new FramestreamError(FramestreamErrorCode.INVALID_STATE, 'FrameFileWriter.write() after close()');
    if (!this.packer.append(payload, start, end)) {
      this.sink(this.packer.take());
      this.packer.append(payload, start, end);
    }
    this.frames++;
  }

  /** Sends what is packed so far (e.g. before a pause), without ending the file. */
  flush(): void {
    if (this.packer.length > 0) this.sink(this.packer.take());
  }

  /** Appends STOP and flushes; the file is complete once the sink has written it. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const stop = encodeStop();
    if (!this.packer.appendRaw(stop)) {
      this.sink(this.packer.take());
      this.packer.appendRaw(stop);
    }
    this.sink(this.packer.take());
  }
}

/** A whole capture file in one Buffer: START(contentType), one frame per payload, STOP. */
export function encodeFrameStreamFile(
  payloads: readonly Uint8Array[],
  contentType: string = DNSTAP_CONTENT_TYPE,
): Buffer {
  const parts: Buffer[] = [];
  const writer = new FrameFileWriter((b) => parts.push(b), { contentType });
  for (const p of payloads) writer.write(p);
  writer.close();
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}
