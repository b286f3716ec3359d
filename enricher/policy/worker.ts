// Worker-thread side of loadPolicyDocument (load.ts): parses and builds the policy data
// here, so the main thread's event loop keeps serving records during a multi-second load,
// and the document's transient object graph dies with this thread's heap.

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

/** Every ArrayBuffer under `value`, once each (a duplicate in a transfer list throws). */
function transferables(value: unknown, out = new Set<ArrayBuffer>()): ArrayBuffer[] {
  if (ArrayBuffer.isView(value)) {
    if (value.buffer instanceof ArrayBuffer) out.add(value.buffer);
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
