// az:// output (README "Object-storage output"): every sealed block of a chunk is a staged
// block of the chunk's final blob (Put Block), durable in the storage account when the call
// returns, so acknowledgements wait for it and nothing local is needed. At seal the block list
// is committed once with If-None-Match: * (Put Block List): the name is created exactly once,
// a second commit of the same name fails (409 BlobAlreadyExists / 412) and is treated as
// "already committed".
//
// The enricher's heartbeat record PREFIX/_partial/<id>/owner.json lists the blobs that hold
// staged blocks; it is rewritten before a chunk's first block is staged and every heartbeat.
// At start, recoverAzure() commits the staged blocks of our own predecessor (same id) and of
// peers whose heartbeat is stale (pods are renamed when rescheduled): it claims the record
// with If-Match first, so two racing successors do not both work on it, and each commit is
// conditional anyway. Uncommitted blocks expire after 7 days on the service.
//
// A writer that cannot refresh its record for staleAfterMs / 2 fails (acks withheld) before a
// successor could take its chunks over: a fence against committing a live writer's chunk.
import type { ContainerClient } from '@azure/storage-blob';
import type { ChunkFile } from './chunk-sink';
import { OutputError } from './errors';
import { type OutputUrl, objectName, recordName, recordPrefix } from './object-url';
import type { ChunkStore } from './store';

/** Azure allows 50,000 committed blocks per blob; one is kept spare. */
export const AZURE_MAX_BLOCKS = 49_999;
/**
 * Put Block requests in flight at once: a chunk's throughput is about this many blocks per
 * round trip instead of one. Blocks may land out of order; sync() waits for all of them, and
 * recovery commits only the gap-free prefix from block 1 (the header).
 */
export const AZURE_STAGE_CONCURRENCY = 4;

/** Container client from the standard environment: connection string, account key, or Entra ID. */
export function azureContainer(u: OutputUrl, env: NodeJS.ProcessEnv = process.env): ContainerClient {
  // Loaded on first use: the SDK costs start-up time for outputs that do not use it.
  const { BlobServiceClient, StorageSharedKeyCredential } =
    require('@azure/storage-blob') as typeof import('@azure/storage-blob');
  const cs = env.AZURE_STORAGE_CONNECTION_STRING;
  if (cs) return BlobServiceClient.fromConnectionString(cs).getContainerClient(u.container);
  const account = env.AZURE_STORAGE_ACCOUNT;
  if (!account) {
    throw new OutputError(
      'OUTPUT_INVALID_OPTION',
      `${u.href} needs AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT (+ AZURE_STORAGE_KEY, or workload identity)`,
    );
  }
  const endpoint = env.AZURE_STORAGE_BLOB_ENDPOINT || `https://${account}.blob.core.windows.net`;
  if (env.AZURE_STORAGE_KEY) {
    const cred = new StorageSharedKeyCredential(account, env.AZURE_STORAGE_KEY);
    return new BlobServiceClient(endpoint, cred).getContainerClient(u.container);
  }
  // Workload identity / managed identity / az login: loaded only when used.
  const { DefaultAzureCredential } = require('@azure/identity') as typeof import('@azure/identity');
  return new BlobServiceClient(endpoint, new DefaultAzureCredential()).getContainerClient(u.container);
}

interface Record {
  enricherId: string;
  incarnation: string;
  heartbeatAt: number;
  /** Blob names that may hold staged, uncommitted blocks. */
  open: string[];
  recoveredBy?: string;
}

function statusOf(err: unknown): number {
  return (err as { statusCode?: number }).statusCode ?? 0;
}

/** 409 BlobAlreadyExists or 412: a conditional create found the name taken. */
function alreadyCreated(err: unknown): boolean {
  const s = statusOf(err);
  return s === 409 || s === 412;
}

function azError(op: string, name: string, err: unknown): OutputError {
  if (err instanceof OutputError) return err;
  const why = err instanceof Error ? err.message.split('\n')[0] : String(err);
  return new OutputError('OUTPUT_IO', `${op} ${name}: ${why}`, { cause: err, path: name });
}

/** Block ids: equal length within a blob (required), sortable by staging order. */
export function blockId(n: number): string {
  return Buffer.from(`snowtap-${String(n).padStart(8, '0')}`).toString('base64');
}

function blockSeq(id: string): number {
  return Number(Buffer.from(id, 'base64').toString('latin1').slice(8));
}

/**
 * The block list a successor commits: blocks were staged a few at a time, so keep the gap-free
 * prefix from block 1 (which holds the header), in order. Rows after a gap were never
 * acknowledged (acks wait for every earlier block).
 */
export function stagedPrefix(ids: readonly string[]): string[] {
  const seqs = new Set(ids.map(blockSeq));
  let n = 0;
  while (seqs.has(n + 1)) n++;
  return Array.from({ length: n }, (_, i) => blockId(i + 1));
}

export interface AzureStoreOptions {
  url: OutputUrl;
  container: ContainerClient;
  enricherId: string;
  incarnation: string;
  now: () => number;
  staleAfterMs: number;
}

export class AzureBlockStore implements ChunkStore {
  readonly syncCounts = false; // a wait for in-flight Put Blocks, not an fsync
  readonly maxBlocks = AZURE_MAX_BLOCKS;
  readonly location: string;
  /** Staged block ids per open chunk (by chunk name). */
  private readonly staged = new Map<string, string[]>();
  /** Blob names listed in the record. */
  private readonly open = new Set<string>();
  private lastRecordOk: number;
  private recordChain: Promise<void> = Promise.resolve();
  private released = false;
  private readonly inflight = new Set<Promise<void>>();
  /** First failed Put Block: sticks (the sink fails on it at the next append, sync or commit). */
  private failure: OutputError | null = null;
  /** Write transactions (metric and README arithmetic). */
  writes = 0;

  constructor(private readonly o: AzureStoreOptions) {
    this.location = o.url.href;
    this.lastRecordOk = o.now();
  }

  async append(chunk: ChunkFile, block: Buffer): Promise<void> {
    // Writers without a heartbeat timer (convert) keep their record fresh from here.
    if (this.o.now() - this.lastRecordOk > this.o.staleAfterMs / 4) await this.writeRecord();
    this.fence();
    const name = objectName(this.o.url, chunk.hourDir, chunk.name);
    let ids = this.staged.get(chunk.name);
    if (ids === undefined) {
      ids = [];
      this.staged.set(chunk.name, ids);
      // Successors only find chunks the record names: list it before its first block.
      this.open.add(name);
      await this.writeRecord();
    }
    const id = blockId(ids.length + 1);
    ids.push(id);
    while (this.inflight.size >= AZURE_STAGE_CONCURRENCY) await Promise.race(this.inflight);
    this.check();
    // A copy: the sink reuses its block buffers as soon as append() returns.
    const data = Buffer.from(block);
    this.writes++;
    const p: Promise<void> = this.o.container
      .getBlockBlobClient(name)
      .stageBlock(id, data, data.length)
      .then(
        () => undefined,
        (err: unknown) => {
          this.failure ??= azError('stage block of', name, err);
        },
      )
      .finally(() => this.inflight.delete(p));
    this.inflight.add(p);
  }

  /** Every block handed over is staged (durable in the account) when this resolves. */
  async sync(): Promise<void> {
    this.fence();
    await Promise.all(this.inflight);
    this.check();
  }

  private check(): void {
    if (this.failure !== null) throw this.failure;
  }

  async publish(chunk: ChunkFile): Promise<string> {
    await this.sync();
    const name = objectName(this.o.url, chunk.hourDir, chunk.name);
    const ids = this.staged.get(chunk.name);
    if (ids === undefined) throw new Error(`commit of ${chunk.name} before any block was written`);
    try {
      this.writes++;
      await this.o.container.getBlockBlobClient(name).commitBlockList(ids, {
        conditions: { ifNoneMatch: '*' },
        blobHTTPHeaders: { blobContentType: 'text/csv' },
      });
    } catch (err) {
      // Someone committed the name already (a successor that took us for dead, or our own
      // retry after a lost response): never commit it twice.
      if (!alreadyCreated(err)) throw azError('commit block list of', name, err);
    }
    this.staged.delete(chunk.name);
    // The record is not rewritten now: a committed name has no uncommitted blocks, so a
    // successor that still finds it listed commits nothing. The next heartbeat drops it.
    this.open.delete(name);
    return name;
  }

  abandon(): void {}

  /** Refreshes the record (heartbeat). */
  heartbeat(): Promise<void> {
    return this.released ? Promise.resolve() : this.writeRecord();
  }

  /** After a clean close: every chunk committed, the record goes. */
  async release(): Promise<void> {
    this.released = true;
    await this.recordChain.catch(() => undefined);
    try {
      this.writes++;
      await this.o.container.getBlockBlobClient(recordName(this.o.url, this.o.enricherId)).deleteIfExists();
    } catch (err) {
      throw azError('delete', recordName(this.o.url, this.o.enricherId), err);
    }
  }

  private fence(): void {
    const age = this.o.now() - this.lastRecordOk;
    if (age > this.o.staleAfterMs / 2) {
      throw new OutputError(
        'OUTPUT_IO',
        `heartbeat record not refreshed for ${Math.round(age / 1000)} s: a successor may take these chunks over; writing stops`,
      );
    }
  }

  /** Record writes run one at a time, each with the state at the time it runs. */
  private writeRecord(): Promise<void> {
    const run = this.recordChain.then(async () => {
      const at = this.o.now();
      const rec: Record = {
        enricherId: this.o.enricherId,
        incarnation: this.o.incarnation,
        heartbeatAt: at,
        open: [...this.open],
      };
      const body = JSON.stringify(rec);
      const name = recordName(this.o.url, this.o.enricherId);
      try {
        this.writes++;
        await this.o.container.getBlockBlobClient(name).upload(body, Buffer.byteLength(body), {
          blobHTTPHeaders: { blobContentType: 'application/json' },
        });
      } catch (err) {
        throw azError('write heartbeat record', name, err);
      }
      this.lastRecordOk = at;
    });
    this.recordChain = run.catch(() => undefined);
    return run;
  }
}

export interface AzureRecoveryResult {
  /** Blobs committed now. */
  committed: string[];
  /** Blobs found committed already (a kill between commit and bookkeeping, or a racing peer). */
  alreadyCommitted: number;
  /** Records of live peers left alone. */
  live: string[];
}

/**
 * Commits the staged blocks of our predecessor (same id) and of peers whose heartbeat is at
 * least staleAfterMs old. Call before the writer of `enricherId` starts.
 */
export async function recoverAzure(
  url: OutputUrl,
  container: ContainerClient,
  enricherId: string,
  opts: { staleAfterMs: number; now?: () => number },
): Promise<AzureRecoveryResult> {
  const now = opts.now ?? Date.now;
  const result: AzureRecoveryResult = { committed: [], alreadyCommitted: 0, live: [] };
  const names: string[] = [];
  try {
    for await (const b of container.listBlobsFlat({ prefix: recordPrefix(url) })) {
      if (b.name.endsWith('/owner.json')) names.push(b.name);
    }
  } catch (err) {
    throw azError('list', recordPrefix(url), err);
  }
  const own = recordName(url, enricherId);
  for (const name of names) {
    const client = container.getBlockBlobClient(name);
    let rec: Record;
    let etag: string | undefined;
    try {
      const buf = await client.downloadToBuffer();
      rec = JSON.parse(buf.toString('utf8')) as Record;
      etag = (await client.getProperties()).etag;
    } catch (err) {
      if (statusOf(err) === 404) continue; // a peer finished it first
      if (err instanceof SyntaxError) continue; // not ours to read
      throw azError('read heartbeat record', name, err);
    }
    if (name !== own && now() - rec.heartbeatAt < opts.staleAfterMs) {
      result.live.push(name);
      continue;
    }
    // Claim: a conditional rewrite that only one successor (or the live owner) can win.
    const claim: Record = { ...rec, heartbeatAt: now(), recoveredBy: enricherId };
    const body = JSON.stringify(claim);
    let claimEtag: string | undefined;
    try {
      claimEtag = (await client.upload(body, Buffer.byteLength(body), { conditions: { ifMatch: etag } }))
        .etag;
    } catch (err) {
      if (statusOf(err) === 412 || statusOf(err) === 404) continue; // someone else got it
      throw azError('claim heartbeat record', name, err);
    }
    for (const blob of rec.open ?? []) await commitStaged(container, blob, result);
    try {
      await client.deleteIfExists({ conditions: { ifMatch: claimEtag } });
    } catch (err) {
      if (statusOf(err) !== 412) throw azError('delete', name, err);
    }
  }
  return result;
}

async function commitStaged(container: ContainerClient, name: string, result: AzureRecoveryResult) {
  const blob = container.getBlockBlobClient(name);
  let ids: string[];
  try {
    const list = await blob.getBlockList('uncommitted');
    ids = (list.uncommittedBlocks ?? []).map((b) => b.name!);
  } catch (err) {
    if (statusOf(err) === 404) return; // nothing was staged
    throw azError('list blocks of', name, err);
  }
  if (ids.length === 0) {
    // Committed already (commit discards uncommitted blocks), or nothing staged.
    if (await blob.exists()) result.alreadyCommitted++;
    return;
  }
  ids = stagedPrefix(ids);
  if (ids.length === 0) return;
  try {
    await blob.commitBlockList(ids, {
      conditions: { ifNoneMatch: '*' },
      blobHTTPHeaders: { blobContentType: 'text/csv' },
    });
    result.committed.push(name);
  } catch (err) {
    if (!alreadyCreated(err)) throw azError('commit block list of', name, err);
    result.alreadyCommitted++;
  }
}
