// zstd in tests: which runtimes have it (from the version, independently of the feature check
// under test) and what the refusal on the others looks like. zstd tests never skip: where the
// runtime lacks zstd they assert the clear start-up error instead.
import assert from 'node:assert/strict';

/** Node has zlib.zstdCompress from 22.15.0 on the 22 line, 23.8.0 on the 23 line, all of 24+. */
export function versionHasZstd(version: string): boolean {
  const [major, minor] = version.split('.').map(Number) as [number, number];
  return major >= 24 || (major === 23 && minor >= 8) || (major === 22 && minor >= 15);
}

export const NODE_HAS_ZSTD = versionHasZstd(process.versions.node);

/** The refusal on a runtime without zstd: names the option and this Node version. */
export const ZSTD_REFUSAL = new RegExp(
  `compression zstd needs Node\\.js >= 22\\.15.*this is Node\\.js ${process.versions.node.replace(/\./g, '\\.')}`,
);

/** Asserts that `fn` throws the library's refusal (OUTPUT_UNSUPPORTED). */
export function assertZstdRefused(fn: () => unknown): void {
  assert.throws(fn, (err: Error & { code?: string }) => {
    assert.equal(err.code, 'OUTPUT_UNSUPPORTED');
    assert.match(err.message, ZSTD_REFUSAL);
    return true;
  });
}
