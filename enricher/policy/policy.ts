// One loaded policy: immutable once built, so whoever refreshes it (file watcher, HTTP
// poller) swaps a new one in by replacing a single reference, and a record being enriched
// sees either the old tables or the new ones, never a mix.

import { readFile } from 'node:fs/promises';
import type { PolicyTables } from './document';
import type { DomainRule, DomainTable } from './domains';
import { PolicyError, PolicyErrorCode } from './errors';
import { type LoadOptions, loadPolicyDocument } from './load';
import type { NetworkRule, NetworkTable } from './networks';

export interface PolicyMeta {
  /** Defaults to now. */
  loadedAt?: Date;
  /** HTTP ETag of the body the policy came from, for If-None-Match on the next poll. */
  sourceEtag?: string;
  /** File path or URL, for logs. */
  source?: string;
}

export class Policy {
  readonly version: string;
  readonly loadedAt: Date;
  readonly domainCount: number;
  readonly networkCount: number;
  readonly sourceEtag: string | undefined;
  readonly source: string | undefined;
  private readonly domains: DomainTable;
  private readonly networks: NetworkTable;

  constructor(tables: PolicyTables, meta: PolicyMeta = {}) {
    this.version = tables.version;
    this.loadedAt = meta.loadedAt ?? new Date();
    this.domainCount = tables.domains.size;
    this.networkCount = tables.networks.size;
    this.sourceEtag = meta.sourceEtag;
    this.source = meta.source;
    this.domains = tables.domains;
    this.networks = tables.networks;
    Object.freeze(this);
  }

  /**
   * Hot path. Longest policy suffix of the presentation-format name name[0..nameLen) on a
   * label boundary (labelStarts as DnsView fills them), else the root rule, else null.
   */
  lookupDomain(
    name: Buffer,
    nameLen: number,
    labelStarts: Int32Array,
    labelCount: number,
  ): DomainRule | null {
    return this.domains.lookup(name, nameLen, labelStarts, labelCount);
  }

  /** Hot path. Longest prefix containing addr[off..off+len) (len 4 or 16; otherwise null). */
  lookupNetwork(addr: Buffer, off: number, len: number): NetworkRule | null {
    return this.networks.lookup(addr, off, len);
  }

  /** For tools and tests (allocates): a qname string in presentation format. */
  lookupDomainName(name: string): DomainRule | null {
    return this.domains.lookupName(name);
  }
}

/** Bytes (JSON, optionally gzip) from any source -> Policy; throws PolicyError. */
export async function loadPolicyBytes(
  bytes: Buffer,
  meta: PolicyMeta & { source: string },
  options?: LoadOptions,
): Promise<Policy> {
  return new Policy(await loadPolicyDocument(bytes, meta.source, options), meta);
}

/** Reads and parses a policy file; throws PolicyError (POLICY_IO when unreadable). */
export async function loadPolicyFile(path: string, options?: LoadOptions): Promise<Policy> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw new PolicyError(PolicyErrorCode.IO, path, '', `cannot be read: ${(err as Error).message}`, err);
  }
  // The file's bytes are ours alone, so the worker may take them instead of a copy.
  return loadPolicyBytes(bytes, { source: path }, { transferBytes: true, ...options });
}
