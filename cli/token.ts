// The shared link token (--auth-token-file), read the same way by the agent and the enricher.
// Kept apart from ./shared so that the agent sidecar loads none of the enricher's output code.
import { MAX_AUTH_TOKEN_LENGTH } from '../proto/link/index';
import { UsageError } from './options';

/**
 * The shared link token from --auth-token-file contents. Secrets written with `echo` or
 * kubectl end with a newline: the token is what precedes it (agent and enricher agree).
 */
export function tokenFromFile(bytes: Buffer, path: string): Buffer {
  let end = bytes.length;
  if (end > 0 && bytes[end - 1] === 0x0a) end--;
  if (end > 0 && bytes[end - 1] === 0x0d) end--;
  const token = bytes.subarray(0, end);
  if (token.length === 0) throw new UsageError(`--auth-token-file ${path}: the file is empty`);
  if (token.length > MAX_AUTH_TOKEN_LENGTH) {
    throw new UsageError(
      `--auth-token-file ${path}: the token is longer than ${MAX_AUTH_TOKEN_LENGTH} bytes`,
    );
  }
  return token;
}
