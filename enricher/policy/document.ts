// Policy document bytes -> lookup tables: gunzip when the gzip magic is present (files
// and HTTP bodies take the same path, whatever their name or Content-Encoding), size and
// UTF-8 checks, JSON.parse, then strict validation (validate.ts).
//
// This is the synchronous path: it blocks the calling thread for the whole load (about
// 1.5 s for 1M domains). The enricher uses loadPolicyDocument (load.ts), which runs this
// same code in a worker thread so record processing never stalls on a policy refresh.

import { isUtf8 } from 'node:buffer';
import * as zlib from 'node:zlib';
import { DomainTable } from './domains';
import { PolicyError, PolicyErrorCode } from './errors';
import { NetworkTable } from './networks';
import { buildPolicyData, type PolicyData } from './validate';

/** Below V8's maximum string length (2^29 - 24), which JSON.parse needs the text to fit in. */
export const MAX_DOCUMENT_BYTES = 512 * 1024 * 1024 - 1024;

export interface ParseOptions {
  /** Limit on the (decompressed) document size; default MAX_DOCUMENT_BYTES. */
  maxDocumentBytes?: number;
}

export interface PolicyTables {
  readonly version: string;
  readonly domains: DomainTable;
  readonly networks: NetworkTable;
}

export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Bytes -> validated PolicyData; throws PolicyError. Runs on any thread. */
export function parsePolicyData(bytes: Buffer, source: string, options: ParseOptions = {}): PolicyData {
  const max = options.maxDocumentBytes ?? MAX_DOCUMENT_BYTES;
  let plain = bytes;
  if (isGzip(bytes)) {
    try {
      plain = zlib.gunzipSync(bytes, { maxOutputLength: max });
    } catch (err) {
      if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
        throw new PolicyError(
          PolicyErrorCode.TOO_LARGE,
          source,
          '',
          `decompresses to more than ${max} bytes`,
          err,
        );
      }
      throw new PolicyError(
        PolicyErrorCode.GZIP,
        source,
        '',
        `bad gzip data: ${(err as Error).message}`,
        err,
      );
    }
  }
  if (plain.length > max) {
    throw new PolicyError(PolicyErrorCode.TOO_LARGE, source, '', `is larger than ${max} bytes`);
  }
  if (!isUtf8(plain)) throw new PolicyError(PolicyErrorCode.BAD_JSON, source, '', 'is not valid UTF-8');
  // A UTF-8 byte order mark is tolerated; JSON.parse would reject it.
  const start = plain.length >= 3 && plain[0] === 0xef && plain[1] === 0xbb && plain[2] === 0xbf ? 3 : 0;
  let doc: unknown;
  try {
    doc = JSON.parse(plain.toString('utf8', start));
  } catch (err) {
    throw new PolicyError(
      PolicyErrorCode.BAD_JSON,
      source,
      '',
      `is not JSON: ${(err as Error).message}`,
      err,
    );
  }
  return buildPolicyData(doc, source);
}

/** Buffers that crossed a thread boundary arrive as plain Uint8Arrays. */
function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/** Wraps PolicyData (possibly structured-cloned from a worker) in lookup tables. */
export function tablesFromData(data: PolicyData): PolicyTables {
  const d = data.domains;
  const n = data.networks;
  return {
    version: data.version,
    domains: new DomainTable({ ...d, overflow: asBuffer(d.overflow), csvBytes: asBuffer(d.csvBytes) }),
    networks: new NetworkTable({ ...n, tenantFields: n.tenantFields.map(asBuffer) }),
  };
}

/** Synchronous load on the calling thread (tools, tests, `convert`); throws PolicyError. */
export function parsePolicyDocument(bytes: Buffer, source: string, options?: ParseOptions): PolicyTables {
  return tablesFromData(parsePolicyData(bytes, source, options));
}
