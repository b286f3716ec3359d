#!/usr/bin/env node
// Repairs package-lock.json after an `npm install` on a machine whose registry serves only the
// linux packages: npm silently leaves out the optional per-platform binaries it cannot fetch
// (@biomejs/cli-darwin-arm64, @duckdb/node-bindings-win32-x64, ...), and `npm ci` then refuses
// the lock file ("Missing: ... from lock file"). This adds the missing entries with the os/cpu/
// libc their names encode, so npm ci skips them here and installs them on those platforms.
// Later `npm install` runs keep the entries.  Usage: node scripts/ci/lockfile-platforms.js [--check]
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const LOCK = path.resolve(__dirname, '../../package-lock.json');
const OS = ['android', 'darwin', 'linux', 'win32', 'freebsd', 'openbsd', 'netbsd', 'sunos', 'aix'];
const CPU = ['arm64', 'x64', 'arm', 'ia32', 'ppc64', 's390x', 'riscv64', 'loong64', 'mips64el'];

/** os/cpu/libc from a name such as cli-linux-x64-musl; null when the name encodes no platform. */
function platformOf(name) {
  const parts = name.split('/').pop().split('-');
  const os = parts.find((p) => OS.includes(p));
  const cpu = parts.find((p) => CPU.includes(p));
  if (!os || !cpu) return null;
  const entry = { os: [os], cpu: [cpu] };
  if (parts.includes('musl')) entry.libc = ['musl'];
  else if (os === 'linux' && parts.includes('gnu')) entry.libc = ['glibc'];
  return entry;
}

const lock = JSON.parse(fs.readFileSync(LOCK, 'utf8'));
const pkgs = lock.packages;
const added = [];
for (const [key, entry] of Object.entries(pkgs)) {
  for (const [dep, version] of Object.entries(entry.optionalDependencies ?? {})) {
    const depKey = `node_modules/${dep}`;
    if (pkgs[depKey] || pkgs[`${key}/${depKey}`]) continue;
    const platform = platformOf(dep);
    if (!platform) continue;
    pkgs[depKey] = { version, ...platform, ...(entry.dev ? { dev: true } : {}), optional: true };
    added.push(`${dep}@${version}`);
  }
}
if (process.argv.includes('--check')) {
  if (added.length) {
    console.error(`package-lock.json lacks ${added.length} platform entries: ${added.join(', ')}`);
    process.exit(1);
  }
  process.exit(0);
}
if (added.length) {
  const root = pkgs[''];
  const rest = Object.keys(pkgs)
    .filter((k) => k !== '')
    .sort((a, b) => a.localeCompare(b, 'en')); // npm's own order, so a later install does not churn
  lock.packages = { '': root };
  for (const k of rest) lock.packages[k] = pkgs[k];
  fs.writeFileSync(LOCK, JSON.stringify(lock, null, 2) + '\n');
}
console.log(added.length ? `added ${added.length}: ${added.join(', ')}` : 'package-lock.json: nothing missing');
