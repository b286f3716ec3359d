// Policy documents and their lookup tables (SPEC §4). The HTTP poller lives elsewhere and
// uses loadPolicyBytes; the enricher holds one Policy reference and swaps it on reload.

export type { PolicyTables } from './document';
export { loadPolicyDocument, MAX_DOCUMENT_BYTES, parsePolicyDocument } from './document';
export type { DomainRule } from './domains';
export { PolicyError, PolicyErrorCode } from './errors';
export type { NetworkRule } from './networks';
export type { PolicyMeta } from './policy';
export { loadPolicyBytes, loadPolicyFile, Policy } from './policy';
