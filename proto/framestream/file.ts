// Streams a Frame Streams capture file through FrameDecoder + ReaderSession (file mode):
// START, data frames, STOP. Reads large blocks into one reused buffer, so a file of any
// size is processed in constant memory (one block plus at most one carried-over frame).

import { open } from 'node:fs/promises';
import { DEFAULT_FILE_BLOCK_SIZE, DNSTAP_CONTENT_TYPE } from './constants';
import { type DataFrameHandler, FrameDecoder } from './decoder';
import { checkIntOption, rejectUnknownOptions } from './errors';
import { ReaderSession } from './reader';

export interface ReadFrameStreamFileOptions {
  /** Content type the file must declare (a START without one is accepted). Default dnstap. */
  contentType?: string;
  /** Larger data frames are skipped and counted in `oversize`. Default 1 MiB. */
  maxDataFrameSize?: number;
  /** Bytes per read. Default 1 MiB. */
  blockSize?: number;
  /** Told about each skipped oversized frame. */
  onOversize?: (length: number, offset: number) => void;
  /**
   * Called after each block with the bytes read so far and the file size (progress bars).
   * A returned promise is awaited before the next read: the caller's backpressure hook.
   */
  onProgress?: (bytesRead: number, fileSize: number) => void | Promise<void>;
}

const OPTION_KEYS = ['contentType', 'maxDataFrameSize', 'blockSize', 'onOversize', 'onProgress'] as const;

export interface ReadFrameStreamFileResult {
  /** Data frames delivered to onData. */
  frames: number;
  /** File bytes read. */
  bytes: number;
  /** Payload bytes delivered to onData. */
  payloadBytes: number;
  /** Oversized data frames skipped. */
  oversize: number;
}

/**
 * Reads `path` and calls `onData(buf, start, end)` for every data frame payload (valid
 * only during the call). Resolves with counts once STOP and end of file were seen.
 * Rejects with FramestreamError (FSTRM_TRUNCATED for a file cut mid-frame or lacking
 * START/STOP, other codes for protocol violations); file system errors pass through as
 * they are (ENOENT, EACCES, ...) so the caller can report them as such.
 */
export async function readFrameStreamFile(
  path: string,
  onData: DataFrameHandler,
  options: ReadFrameStreamFileOptions = {},
): Promise<ReadFrameStreamFileResult> {
  rejectUnknownOptions('readFrameStreamFile', options, OPTION_KEYS);
  const blockSize = checkIntOption(
    'readFrameStreamFile',
    'blockSize',
    options.blockSize ?? DEFAULT_FILE_BLOCK_SIZE,
    1,
    1 << 30,
  );
  const session = new ReaderSession({
    mode: 'file',
    contentType: options.contentType ?? DNSTAP_CONTENT_TYPE,
  });
  const decoder = new FrameDecoder({
    maxDataFrameSize: options.maxDataFrameSize,
    onData: (buf, start, end) => {
      session.onData();
      onData(buf, start, end);
    },
    onControl: (frame) => {
      // File mode never produces replies: there is nobody to send them to.
      session.onControl(frame);
    },
    onOversize: options.onOversize,
  });
  const onProgress = options.onProgress;

  const handle = await open(path, 'r');
  try {
    const fileSize = (await handle.stat()).size;
    const block = Buffer.allocUnsafe(blockSize);
    let total = 0;
    for (;;) {
      const { bytesRead } = await handle.read(block, 0, blockSize, null);
      if (bytesRead === 0) break;
      // The decoder copies any partial frame it keeps, so the block can be reused.
      decoder.write(bytesRead === blockSize ? block : block.subarray(0, bytesRead));
      total += bytesRead;
      if (onProgress !== undefined) await onProgress(total, fileSize);
    }
    decoder.end();
    session.end();
    return {
      frames: decoder.stats.dataFrames,
      bytes: total,
      payloadBytes: decoder.stats.dataBytes,
      oversize: decoder.stats.oversizeFrames,
    };
  } finally {
    await handle.close();
  }
}
