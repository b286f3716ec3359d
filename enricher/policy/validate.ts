// Validates a parsed policy document and builds its tables' data (README "Output: CSV chunks", policy document):
//   {"version": "...", "domains": [{"suffix", "category", "action"}], "networks": [{"cidr", "tenant"}]}
// `version` is required; `domains` and `networks` may be omitted (empty). Unknown keys, at
// the top level and inside entries, are errors that name the key. Two entries that
// normalise to the same suffix or network are an error (POLICY_DUPLICATE) rather than
// "last wins": a generator bug should be seen, and the caller keeps the last good policy
// meanwhile. Errors name the JSON path, e.g. `domains[12].suffix: must be a string`.

import { DomainTableBuilder } from './domain-builder';
import type { DomainTableData } from './domains';
import { FieldError, PolicyError, PolicyErrorCode } from './errors';
import { normalizeSuffix } from './names';
import { NetworkTableBuilder } from './network-builder';
import type { NetworkTableData } from './networks';

export const MAX_VERSION_CHARS = 256;
/** category, action, tenant: values that end up in every matching CSV row. */
export const MAX_TEXT_FIELD_CHARS = 1024;

/** Everything a Policy needs, as plain data (typed arrays, strings) that can cross threads. */
export interface PolicyData {
  version: string;
  domains: DomainTableData;
  networks: NetworkTableData;
}

const TOP_KEYS = ['version', 'domains', 'networks'];

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Checks a text field; returns the problem or null. */
function textProblem(v: unknown): string | null {
  if (typeof v !== 'string') return 'must be a string';
  if (v.length > MAX_TEXT_FIELD_CHARS) return `is longer than ${MAX_TEXT_FIELD_CHARS} characters`;
  return null;
}

/** The first key of `entry` outside `allowed`, or null. */
function unknownKey(entry: Record<string, unknown>, allowed: readonly string[]): string | null {
  for (const key in entry) if (!allowed.includes(key)) return key;
  return null;
}

/** JSON path of an entry or one of its fields, e.g. `domains[12].suffix`. */
function at(list: string, index: number, field?: string): string {
  return `${list}[${index}]${field === undefined ? '' : '.' + field}`;
}

const DOMAIN_KEYS = ['suffix', 'category', 'action'];
const NETWORK_KEYS = ['cidr', 'tenant'];

export function buildPolicyData(doc: unknown, source: string): PolicyData {
  const fail = (path: string, problem: string, code: PolicyErrorCode = PolicyErrorCode.INVALID) =>
    new PolicyError(code, source, path, problem);
  if (!isObject(doc)) throw fail('', 'the document must be a JSON object');
  for (const key in doc) {
    if (!TOP_KEYS.includes(key)) throw fail(key, `unknown top-level key (expected ${TOP_KEYS.join(', ')})`);
  }
  const version = doc['version'];
  if (typeof version !== 'string' || version.length === 0)
    throw fail('version', 'must be a non-empty string');
  if (version.length > MAX_VERSION_CHARS)
    throw fail('version', `is longer than ${MAX_VERSION_CHARS} characters`);
  const domains = doc['domains'] ?? [];
  const networks = doc['networks'] ?? [];
  if (!Array.isArray(domains)) throw fail('domains', 'must be an array');
  if (!Array.isArray(networks)) throw fail('networks', 'must be an array');

  // Paths are built only on failure: a million template strings would cost a real share
  // of the load time.
  const db = new DomainTableBuilder();
  for (let i = 0; i < domains.length; i++) {
    const e: unknown = domains[i];
    if (!isObject(e)) throw fail(at('domains', i), 'must be an object');
    const extra = unknownKey(e, DOMAIN_KEYS);
    if (extra !== null)
      throw fail(at('domains', i, extra), `unknown key (expected ${DOMAIN_KEYS.join(', ')})`);
    const { suffix, category, action } = e;
    if (typeof suffix !== 'string')
      throw fail(at('domains', i, 'suffix'), 'must be a string ("" or "." for the root)');
    const catProblem = textProblem(category);
    if (catProblem !== null) throw fail(at('domains', i, 'category'), catProblem);
    const actProblem = textProblem(action);
    if (actProblem !== null) throw fail(at('domains', i, 'action'), actProblem);
    let canonical: string;
    try {
      canonical = normalizeSuffix(suffix);
    } catch (err) {
      if (err instanceof FieldError) throw fail(at('domains', i, 'suffix'), err.message, err.code);
      throw err;
    }
    const index = db.add(canonical, category as string, action as string);
    if (index < 0) {
      const shown = canonical === '' ? '(the root)' : JSON.stringify(canonical);
      throw fail(
        at('domains', i, 'suffix'),
        `${shown} duplicates domains[${-1 - index}]`,
        PolicyErrorCode.DUPLICATE,
      );
    }
  }

  const nb = new NetworkTableBuilder();
  for (let i = 0; i < networks.length; i++) {
    const e: unknown = networks[i];
    if (!isObject(e)) throw fail(at('networks', i), 'must be an object');
    const extra = unknownKey(e, NETWORK_KEYS);
    if (extra !== null)
      throw fail(at('networks', i, extra), `unknown key (expected ${NETWORK_KEYS.join(', ')})`);
    const { cidr, tenant } = e;
    if (typeof cidr !== 'string') throw fail(at('networks', i, 'cidr'), 'must be a string');
    const tenantProblem = textProblem(tenant);
    if (tenantProblem !== null) throw fail(at('networks', i, 'tenant'), tenantProblem);
    let index: number;
    try {
      index = nb.add(cidr, tenant as string);
    } catch (err) {
      if (err instanceof FieldError) throw fail(at('networks', i, 'cidr'), err.message, err.code);
      throw err;
    }
    if (index < 0) {
      throw fail(
        at('networks', i, 'cidr'),
        `${JSON.stringify(cidr)} duplicates networks[${-1 - index}]`,
        PolicyErrorCode.DUPLICATE,
      );
    }
  }
  return { version, domains: db.finish(), networks: nb.finish() };
}
