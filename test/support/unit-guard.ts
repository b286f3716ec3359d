// Loaded with `--require` by `npm run test:unit`: inside a unit test file (a test runner child
// process) opening a socket, listening, or starting a process throws, so a test that needs
// them cannot sit in the fast tier by accident; it belongs in test/interop or test/e2e.
// Worker threads stay allowed (they are in-process). The runner itself (the parent process,
// which spawns one child per file) is left alone: NODE_TEST_CONTEXT is set only in children.
import childProcess from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';

export class UnitTierViolation extends Error {
  readonly code = 'UNIT_TIER_VIOLATION';
  constructor(what: string) {
    super(`${what} in a unit test: move the test to test/interop or test/e2e`);
    this.name = 'UnitTierViolation';
  }
}

function forbid<T extends object>(target: T, names: readonly string[], what: string): void {
  for (const name of names) {
    Object.defineProperty(target, name, {
      configurable: true,
      writable: true,
      value: () => {
        throw new UnitTierViolation(`${what} (${name})`);
      },
    });
  }
}

if (process.env.NODE_TEST_CONTEXT !== undefined) {
  forbid(
    childProcess,
    ['spawn', 'spawnSync', 'exec', 'execSync', 'execFile', 'execFileSync', 'fork'],
    'starting a process',
  );
  forbid(net, ['connect', 'createConnection'], 'opening a socket');
  forbid(net.Server.prototype, ['listen'], 'listening on a socket');
  forbid(net.Socket.prototype, ['connect'], 'opening a socket');
  forbid(dgram, ['createSocket'], 'opening a UDP socket');
}
