// The project's interop rule, in one place: a test that needs software we did not write
// (a DNS server, fstrm tools, haproxy, promtool, helm, Docker ...) runs whenever it is
// installed. When it is missing, CI (SNOWTAP_REQUIRE_INTEROP=1, set by .ci/run, which
// installs everything) FAILS the test naming what is missing; a developer's laptop skips
// it with the same printed reason.
import type { TestContext } from 'node:test';

/** Call when a needed tool is missing: throws under SNOWTAP_REQUIRE_INTEROP=1, else skips. Returns false. */
export function interopMissing(t: TestContext, reason: string): false {
  if (process.env.SNOWTAP_REQUIRE_INTEROP === '1') {
    throw new Error(`interop required (SNOWTAP_REQUIRE_INTEROP=1) but ${reason}`);
  }
  t.skip(reason);
  return false;
}
