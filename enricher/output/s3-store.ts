// s3:// output (README "Object-storage output"). S3 has no durable append below 5 MiB (parts
// must be >= 5 MiB except the last, 10,000 at most, and an incomplete multipart upload is not
// readable), so acknowledgements cannot wait for S3 at per-batch cadence. The design: the
// local chunk writer is a durable log on the pod's volume (a PVC: rows are fsynced before
// they are acknowledged, as with --output-dir), and each sealed chunk is uploaded with one
// PutObject If-None-Match: * under its final name, then deleted locally. A PutObject that
// fails with 412 PreconditionFailed found the name created by an earlier attempt (a kill
// between the upload and the delete): it counts as committed, never as a second create.
// After a kill, the next start on the same volume (any enricher id: peers' directories once
// their heartbeat is stale) salvages torn partial files and uploads every leftover chunk
// through the same path (recovery.ts with this publisher).
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import { OutputError } from './errors';
import { type OutputUrl, objectName } from './object-url';
import type { FilePublisher } from './store';

const noop = () => undefined;

/** Loaded on first use: the SDK costs start-up time for outputs that do not use it. */
function sdk(): typeof import('@aws-sdk/client-s3') {
  return require('@aws-sdk/client-s3') as typeof import('@aws-sdk/client-s3');
}

/** Single PutObject limit. */
export const S3_MAX_PUT_BYTES = 5 * 1024 ** 3;
const PUT_ATTEMPTS = 4;

/**
 * Client from the standard AWS environment (region, credentials chain, AWS_ENDPOINT_URL[_S3]);
 * AWS_S3_FORCE_PATH_STYLE=true for S3-compatible servers that need path-style addressing.
 */
export function s3Client(env: NodeJS.ProcessEnv = process.env): S3Client {
  const config: S3ClientConfig = {
    // Retries are ours (a file stream cannot be replayed by the SDK).
    maxAttempts: 1,
    // Integrity by Content-MD5 (computed here) rather than streaming trailer checksums, which
    // some S3-compatible servers do not implement.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // Failures surface as OutputErrors with the cause; the SDK's own console warnings would
    // only repeat them (e.g. every 412 on a streamed body).
    logger: { debug: noop, info: noop, warn: noop, error: noop },
  };
  if (!env.AWS_REGION && !env.AWS_DEFAULT_REGION) config.region = 'us-east-1';
  if (/^(1|true|yes)$/i.test(env.AWS_S3_FORCE_PATH_STYLE ?? '')) config.forcePathStyle = true;
  return new (sdk().S3Client)(config);
}

async function md5Base64(file: string): Promise<string> {
  const h = createHash('md5');
  for await (const piece of fs.createReadStream(file)) h.update(piece as Buffer);
  return h.digest('base64');
}

function statusOf(err: unknown): number {
  return (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode ?? 0;
}

/** Uploads sealed local chunk files with one conditional PutObject each. */
export function s3Publisher(
  u: OutputUrl,
  client: S3Client,
  onPut?: (key: string, created: boolean) => void,
): FilePublisher {
  return async (file, hourDir, name) => {
    const key = objectName(u, hourDir, name);
    const size = (await fsp.stat(file)).size;
    if (size > S3_MAX_PUT_BYTES) {
      throw new OutputError('OUTPUT_IO', `${file} is ${size} bytes: over the 5 GiB single-PUT limit`, {
        path: file,
      });
    }
    const md5 = await md5Base64(file);
    for (let attempt = 1; ; attempt++) {
      try {
        await client.send(
          new (sdk().PutObjectCommand)({
            Bucket: u.container,
            Key: key,
            Body: fs.createReadStream(file),
            ContentLength: size,
            ContentMD5: md5,
            ContentType: 'text/csv',
            IfNoneMatch: '*',
          }),
        );
        onPut?.(key, true);
        return key;
      } catch (err) {
        // The file went away: a peer recovering the same volume uploaded it (recovery.ts).
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw err;
        const status = statusOf(err);
        if (status === 412) {
          onPut?.(key, false);
          return key; // created by an earlier attempt: committed, once
        }
        // 409 ConditionalRequestConflict (a concurrent conditional write), 5xx, network: retry.
        const retry = status === 0 || status === 409 || status === 429 || status >= 500;
        if (!retry || attempt >= PUT_ATTEMPTS) {
          const why = err instanceof Error ? err.message.split('\n')[0] : String(err);
          throw new OutputError('OUTPUT_IO', `upload s3://${u.container}/${key}: ${why}`, {
            cause: err,
            path: file,
          });
        }
        await new Promise((r) => setTimeout(r, 200 * 2 ** attempt));
      }
    }
  };
}
