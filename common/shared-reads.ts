// Reads of accepted plain (non-TLS) dnstap sockets into one shared buffer. By default Node
// allocates a new 64 KiB ArrayBuffer for every socket read and leaves it to the garbage
// collector: at a steady 100 k frames/s that is hundreds of buffers and ~16 MB of external
// memory a second, which V8 answers with frequent full (mark-compact) collections. Our
// decoders consume every chunk synchronously and copy the few bytes of a frame cut by the
// chunk boundary, so nothing keeps a chunk after the call: one buffer can serve every read of
// every connection (reads are delivered one at a time on the main thread).
//
// Node has the `onread` option (a caller-supplied read buffer) only for sockets it creates
// itself, not for sockets a net.Server accepts, so an accepted socket (paused on connect) has
// its handle moved into a new net.Socket built with `onread`. That uses net.Socket's
// `_handle` and `_server` fields; where they are not what we expect, the socket is left as it
// is and read the ordinary way ('data' events).

import net from 'node:net';

/** Bytes per read: larger than Node's 64 KiB so a paced producer's burst takes fewer reads. */
export const SHARED_READ_BYTES = 256 * 1024;

type ChunkHandler = (chunk: Buffer) => void;

interface Slot {
  onChunk: ChunkHandler;
}

/**
 * Accepted sockets adopted into the shared-buffer path / left to 'data' events, and the reads
 * of adopted sockets (frames per read = frames / reads: what one event-loop wakeup brings).
 */
export const sharedReadStats = { adopted: 0, ordinary: 0, reads: 0 };

const slots = new WeakMap<net.Socket, Slot>();
let shared: Buffer | null = null;

interface SocketInternals {
  _handle?: { readStart?: unknown } | null;
  _server?: unknown;
  server?: unknown;
}

/**
 * `socket` was accepted with pauseOnConnect and nothing has read from it: returns a socket
 * on the same connection that reads into the shared buffer (hand its chunks to onChunks()), or
 * `socket` itself, resumed, when its internals are not the expected ones.
 */
export function adoptSharedReads(socket: net.Socket): net.Socket {
  const old = socket as unknown as SocketInternals;
  const handle = old._handle;
  if (
    handle === null ||
    handle === undefined ||
    typeof handle.readStart !== 'function' ||
    !('_server' in old)
  ) {
    sharedReadStats.ordinary++;
    socket.resume();
    return socket;
  }
  const slot: Slot = { onChunk: () => {} };
  old._handle = null;
  // `handle` is a documented-in-code but untyped constructor option (the accepted socket's own).
  const options = {
    handle,
    allowHalfOpen: false,
    readable: true,
    writable: true,
    onread: sharedReadOption((chunk) => {
      sharedReadStats.reads++;
      slot.onChunk(chunk);
    }),
  };
  const adopted = new net.Socket(options as unknown as net.SocketConstructorOpts);
  // The server counts its connections through this field (server.close() waits for zero).
  const fresh = adopted as unknown as SocketInternals;
  fresh._server = old._server;
  fresh.server = old.server;
  old._server = null;
  old.server = null;
  socket.destroy(); // has no handle any more: nothing is closed, nothing counted twice
  slots.set(adopted, slot);
  sharedReadStats.adopted++;
  adopted.resume(); // flowing, so 'end' is emitted at EOF
  return adopted;
}

/**
 * The `onread` option that reads a socket into the shared buffer, each chunk to `onChunk`,
 * without the stream machinery ('data' events, a Buffer per read): for a socket Node creates
 * (net.connect), and for adoptSharedReads().
 * Such a socket never emits 'data'; 'end', 'error' and 'close' come as usual (resume() it so
 * that 'end' is emitted at EOF). TLS sockets have no `onread`: keep 'data' events there.
 */
export function sharedReadOption(onChunk: ChunkHandler): {
  buffer: Buffer;
  callback: (n: number, buf: Uint8Array) => boolean;
} {
  shared ??= Buffer.allocUnsafe(SHARED_READ_BYTES);
  return {
    buffer: shared,
    callback: (n, buf) => {
      onChunk((buf as Buffer).subarray(0, n));
      return true;
    },
  };
}

/** Every chunk read from `socket`, in order: the shared-buffer path or 'data' events. */
export function onChunks(socket: net.Socket, onChunk: ChunkHandler): void {
  const slot = slots.get(socket);
  if (slot !== undefined) slot.onChunk = onChunk;
  else socket.on('data', onChunk);
}
