// Asynchronous policy load for the running enricher: the document is parsed and its tables
// built in a short-lived worker thread (worker.ts); only typed arrays come back
// (transferred, not copied), so the event loop is blocked for well under a millisecond
// however large the document is, instead of ~1.5 s per million domains.

import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { type ParseOptions, type PolicyTables, parsePolicyDocument, tablesFromData } from './document';
import { PolicyError, PolicyErrorCode } from './errors';
import type { WorkerReply, WorkerRequest } from './worker';

export interface LoadOptions extends ParseOptions {
  /** Parse in a worker thread (default true); false parses on the calling thread. */
  worker?: boolean;
  /**
   * Hand the bytes' ArrayBuffer to the worker instead of copying it (saves a copy of a
   * large document on the main thread); `bytes` is unusable afterwards. Only honoured
   * when `bytes` spans its whole ArrayBuffer.
   */
  transferBytes?: boolean;
}

/** Bytes (JSON, optionally gzip) -> tables; rejects with PolicyError. */
export function loadPolicyDocument(
  bytes: Buffer,
  source: string,
  options: LoadOptions = {},
): Promise<PolicyTables> {
  if (options.worker === false) {
    return new Promise((resolve) => resolve(parsePolicyDocument(bytes, source, options)));
  }
  return new Promise((resolve, reject) => {
    const request: WorkerRequest & { policyWorker: true } = {
      policyWorker: true,
      bytes,
      source,
      maxDocumentBytes: options.maxDocumentBytes,
    };
    const ab = bytes.buffer;
    const whole = ab instanceof ArrayBuffer && bytes.byteOffset === 0 && bytes.byteLength === ab.byteLength;
    const transferList = options.transferBytes === true && whole ? [ab] : [];
    const worker = new Worker(join(__dirname, 'worker.js'), { workerData: request, transferList });
    let settled = false;
    const fail = (problem: string, cause?: unknown) => {
      if (settled) return;
      settled = true;
      reject(new PolicyError(PolicyErrorCode.INTERNAL, source, '', problem, cause));
    };
    worker.once('message', (reply: WorkerReply) => {
      if (settled) return;
      settled = true;
      if (reply.ok) {
        try {
          resolve(tablesFromData(reply.data));
        } catch (err) {
          reject(err);
        }
      } else {
        reject(new PolicyError(reply.code, source, reply.path, reply.problem));
      }
    });
    worker.once('error', (err) => fail(`load worker failed: ${err.name}: ${err.message}`, err));
    worker.once('exit', (code) => fail(`load worker exited with code ${code} before answering`));
  });
}
