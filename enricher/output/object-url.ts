// --output-url: az://CONTAINER/PREFIX or s3://BUCKET/PREFIX (README "Object-storage output").
// Object names mirror the directory layout: PREFIX/YYYY/MM/DD/HH/<chunk name>, and the
// per-enricher heartbeat record lives under PREFIX/_partial/<enricher id>/ (a path the Event
// Grid subject filter and the pipes' PATTERN exclude).
import { OutputError } from './errors';
import { PARTIAL_DIR } from './layout';

export const OUTPUT_URL_SCHEMES = ['az', 's3'] as const;
export type OutputUrlScheme = (typeof OUTPUT_URL_SCHEMES)[number];

export interface OutputUrl {
  scheme: OutputUrlScheme;
  /** Azure container or S3 bucket. */
  container: string;
  /** '' or a prefix ending in '/'. */
  prefix: string;
  /** As given, normalised (for logs and metrics). */
  href: string;
}

// Azure container names: 3-63 of [a-z0-9-], no leading/trailing/double '-'. S3 bucket names:
// 3-63 of [a-z0-9.-]. One pattern covers both closely enough; the service has the last word.
const CONTAINER = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

function bad(url: string, why: string): OutputError {
  return new OutputError('OUTPUT_INVALID_OPTION', `output URL ${JSON.stringify(url)} ${why}`);
}

/** Parses az://CONTAINER[/PREFIX] or s3://BUCKET[/PREFIX]; throws OUTPUT_INVALID_OPTION naming the problem. */
export function parseOutputUrl(url: string): OutputUrl {
  const m = /^([a-z0-9]+):\/\/([^/]*)(?:\/(.*))?$/.exec(url);
  if (m === null) throw bad(url, 'must look like az://CONTAINER/PREFIX or s3://BUCKET/PREFIX');
  const scheme = m[1]!;
  if (!(OUTPUT_URL_SCHEMES as readonly string[]).includes(scheme)) {
    throw bad(url, `has scheme ${scheme}: must be one of ${OUTPUT_URL_SCHEMES.join(', ')}`);
  }
  const container = m[2]!;
  if (!CONTAINER.test(container) || container.includes('--') || container.includes('..')) {
    throw bad(
      url,
      `names container/bucket ${JSON.stringify(container)}: use 3-63 of a-z 0-9 - (and . for S3)`,
    );
  }
  const parts = (m[3] ?? '').split('/').filter((p) => p !== '');
  for (const p of parts) {
    if (p === '.' || p === '..' || p === PARTIAL_DIR || /[\\\x00-\x1f\x7f]/.test(p)) {
      throw bad(url, `has prefix component ${JSON.stringify(p)}: not allowed`);
    }
  }
  const prefix = parts.length === 0 ? '' : `${parts.join('/')}/`;
  return { scheme: scheme as OutputUrlScheme, container, prefix, href: `${scheme}://${container}/${prefix}` };
}

/** Object name of a chunk: PREFIX + YYYY/MM/DD/HH + '/' + name. */
export function objectName(u: OutputUrl, hourDir: string, name: string): string {
  return `${u.prefix}${hourDir.split('\\').join('/')}/${name}`;
}

/** The heartbeat/lease record of one enricher id. */
export function recordName(u: OutputUrl, enricherId: string): string {
  return `${u.prefix}${PARTIAL_DIR}/${enricherId}/owner.json`;
}

export function recordPrefix(u: OutputUrl): string {
  return `${u.prefix}${PARTIAL_DIR}/`;
}
