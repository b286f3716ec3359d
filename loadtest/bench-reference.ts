// `npm run bench:reference`: whole-process `snowtap convert` against the reference decoders on
// the same capture and the same core, and across Node runtimes, in one run. Each round runs,
// back to back and pinned to CPU 0 (`taskset -c 0`): the Go `dnstap -y` CLI and `dnstap-ldns
// -y` writing to /dev/null, then `snowtap convert` (plain CSV to a temp dir) under every Node
// binary given. Reported: records/s per tool (median of the rounds) and snowtap's ratio to each
// reference, so figures taken on a busy machine still compare like with like.
//
//   node dist/loadtest/bench-reference.js [--frames N] [--rounds K] [--node PATH]... [--quick] [--json FILE]
//     --quick: 312 k frames, one round (CI's short form). --node defaults to the running node; give it twice to compare runtimes (Node 20 vs 24).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { replicateCapture } from './capture';
import { median } from './stats';

const MAIN = path.resolve(__dirname, '../cli/main.js');
const args = process.argv.slice(2);
const num = (name: string, def: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : def);
const QUICK = args.includes('--quick');
const FRAMES = num('--frames', QUICK ? 312_000 : 1_040_000);
const ROUNDS = num('--rounds', QUICK ? 1 : 3);
const nodes = args.flatMap((a, i) => (a === '--node' ? [args[i + 1]!] : []));
if (nodes.length === 0) nodes.push(process.execPath);
const jsonOut = args.includes('--json') ? args[args.indexOf('--json') + 1] : undefined;

interface Tool {
  name: string;
  /** The program that must exist for the tool to run. */
  bin: string;
  argv: (capture: string, out: string) => string[];
}

const references: Tool[] = [
  {
    name: 'go dnstap -y',
    bin: '/usr/bin/dnstap',
    argv: (c) => ['/usr/bin/dnstap', '-y', '-r', c, '-w', '/dev/null'],
  },
  {
    name: 'dnstap-ldns -y',
    bin: '/usr/bin/dnstap-ldns',
    argv: (c) => ['/bin/sh', '-c', `exec /usr/bin/dnstap-ldns -y -r '${c}' >/dev/null`],
  },
];

function versionOf(node: string): string {
  return spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim();
}

/** Wall seconds of one pinned run; throws when the tool fails. */
function timed(argv: string[]): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('taskset', ['-c', '0', ...argv], {
    stdio: ['ignore', 'ignore', 'pipe'],
    encoding: 'utf8',
  });
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0)
    throw new Error(`${argv.join(' ')} exited ${r.status ?? r.signal}: ${r.stderr.slice(-500)}`);
  return secs;
}

function main(): void {
  const dir = mkdtempSync(path.join(tmpdir(), 'snowtap-bench-ref-'));
  try {
    const capture = path.join(dir, 'capture.fstrm');
    const { frames } = replicateCapture(capture, FRAMES);
    const tools: Tool[] = references.filter((t) => existsSync(t.bin));
    for (const node of nodes) {
      tools.push({
        name: `snowtap convert (node ${versionOf(node)})`,
        bin: node,
        argv: (c, out) => [node, MAIN, 'convert', '--output-dir', out, '--rotate-max-rows', '1000000', c],
      });
    }
    console.log(
      `${frames} frames (unbound bulk fixture replicated), ${ROUNDS} rounds, each tool pinned to CPU 0`,
    );
    const secs = new Map<string, number[]>(tools.map((t) => [t.name, []]));
    for (let r = 1; r <= ROUNDS; r++) {
      for (const t of tools) {
        const out = path.join(dir, `out-${r}`);
        const s = timed(t.argv(capture, out));
        rmSync(out, { recursive: true, force: true });
        secs.get(t.name)!.push(s);
        console.log(
          `  round ${r} ${t.name.padEnd(36)} ${s.toFixed(2)} s  ${Math.round(frames / s / 1000)} k records/s`,
        );
      }
    }
    const rates = Object.fromEntries(
      tools.map((t) => [t.name, Math.round(frames / median(secs.get(t.name)!))]),
    );
    console.log('\nmedians (records/s, whole process, one core):');
    for (const [name, rate] of Object.entries(rates)) console.log(`  ${name.padEnd(36)} ${rate}`);
    const go = rates['go dnstap -y'];
    /** snowtap convert / Go `dnstap -y`, per Node binary in the order given (CI's floor reads 0). */
    const ratioToGo: number[] = [];
    for (const node of nodes) {
      const name = `snowtap convert (node ${versionOf(node)})`;
      if (go) {
        ratioToGo.push(rates[name]! / go);
        console.log(`  ${name} / go dnstap -y = ${(rates[name]! / go).toFixed(1)}x`);
      }
    }
    if (jsonOut)
      writeFileSync(jsonOut, `${JSON.stringify({ frames, rounds: ROUNDS, rates, ratioToGo }, null, 2)}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main();
