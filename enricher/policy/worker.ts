// Worker-thread side of loadPolicyDocument (load.ts): parses and builds the policy data
// here, so the main thread's event loop keeps serving records during a multi-second load,
// and the document's transient object graph dies with this thread's heap.

import * as threads from 'node:worker_threads';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { parsePolicyData } from './document';
import { PolicyError } from './errors';
import type { PolicyData } from './validate';

export interface WorkerRequest {
  bytes: Uint8Array;
  source: string;
  maxDocumentBytes?: number;
}

export type WorkerReply =
  | { ok: true; data: PolicyData }
  | { ok: false; code: PolicyError['code']; path: string; problem: string };

// Node >= 21 marks the shared Buffer pool untransferable and postMessage throws
// DataCloneError for it (Node 20 has no such mark and copies instead). Small strings
// encoded with Buffer.from land in that pool, so such buffers are copied, not moved.
const isUntransferable: (ab: ArrayBuffer) => boolean =
  (threads as { isMarkedAsUntransferable?: (v: unknown) => boolean }).isMarkedAsUntransferable ??
  (() => false);

/** Every movable ArrayBuffer under `value`, once each (a duplicate in a transfer list throws). */
function transferables(value: unknown, out = new Set<ArrayBuffer>()): ArrayBuffer[] {
  if (ArrayBuffer.isView(value)) {
    const ab = value.buffer;
    // A view over part of a buffer shares it with something else: copy rather than detach it.
    if (ab instanceof ArrayBuffer && value.byteLength === ab.byteLength && !isUntransferable(ab)) out.add(ab);
  } else if (Array.isArray(value)) {
    for (const v of value) transferables(v, out);
  } else if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) transferables(v, out);
  }
  return [...out];
}

function run(port: NonNullable<typeof parentPort>, req: WorkerRequest): void {
  const bytes = Buffer.from(req.bytes.buffer, req.bytes.byteOffset, req.bytes.byteLength);
  let reply: WorkerReply;
  try {
    reply = {
      ok: true,
      data: parsePolicyData(bytes, req.source, { maxDocumentBytes: req.maxDocumentBytes }),
    };
  } catch (err) {
    // Anything else is a bug: let it surface as the worker's 'error' event.
    if (!(err instanceof PolicyError)) throw err;
    reply = { ok: false, code: err.code, path: err.path, problem: err.problem };
  }
  port.postMessage(reply, reply.ok ? transferables(reply.data) : []);
}

if (
  !isMainThread &&
  parentPort !== null &&
  (workerData as { policyWorker?: boolean })?.policyWorker === true
) {
  run(parentPort, workerData as WorkerRequest);
}
