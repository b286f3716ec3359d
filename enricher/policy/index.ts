// Policy documents and their lookup tables (README "Output: CSV chunks", policy document). Refreshers (file, HTTP) build a new
// Policy with loadPolicyFile / loadPolicyBytes; the enricher holds one Policy reference
// and swaps it on reload.

export type { ParseOptions, PolicyTables } from './document';
export { MAX_DOCUMENT_BYTES, parsePolicyDocument } from './document';
export type { DomainRule } from './domains';
export { PolicyError, PolicyErrorCode } from './errors';
export type { LoadOptions } from './load';
export { loadPolicyDocument } from './load';
export type { NetworkRule } from './networks';
export type { PolicyMeta } from './policy';
export { loadPolicyBytes, loadPolicyFile, Policy } from './policy';
