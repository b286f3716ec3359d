// CLI habits every command has (issue 12, step 6): --version, --log-level and --log-format
// as ordinary options (flag, SNOWTAP_* env, config key), and one line naming the problem
// instead of a stack trace for bad usage or configuration (exit 2).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { textLine } from '../../common/log';

const MAIN = path.resolve(__dirname, '../../cli/main.js');
const ROOT = path.resolve(__dirname, '../../..');
const CAPTURE = path.join(ROOT, 'test/fixtures/kdig-tool-file.fstrm');
const dir = mkdtempSync(path.join(tmpdir(), 'snowtap-habits-'));
after(() => rmSync(dir, { recursive: true, force: true }));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function snowtap(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SNOWTAP_')));
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, ...args], { env: { ...clean, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code) : 0, stdout, stderr });
    });
  });
}

/** An agent replaying a capture to a port nobody listens on: logs at info and warn, exits 1 quickly. */
const REPLAY = [
  'agent',
  '--input-file',
  CAPTURE,
  '--enricher',
  '127.0.0.1:1',
  '--input-timeout',
  '0.3',
  '--drain-timeout',
  '0.1',
  '--metrics-listen',
  '127.0.0.1:0',
];

test('--version: package version, build commit and Node version, on its own and after any command', async () => {
  const version = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version;
  for (const args of [
    ['--version'],
    ['agent', '--version'],
    ['enricher', '--version'],
    ['convert', '--version'],
  ]) {
    const r = await snowtap(args);
    assert.equal(r.code, 0, args.join(' '));
    const m = /^snowtap (\S+) \(commit ([0-9a-f]{7,40}|unknown), node (v\S+)\)\n$/.exec(r.stdout);
    assert.ok(m, `${args.join(' ')}: ${r.stdout}`);
    assert.equal(m[1], version);
    assert.equal(m[3], process.version);
  }
});

test('--log-format json (the default): ISO time and level names', async () => {
  const r = await snowtap(REPLAY);
  assert.equal(r.code, 1, r.stderr);
  const lines = r.stderr
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));
  assert.ok(lines.length >= 2, r.stderr);
  for (const l of lines) {
    assert.match(l.level, /^(info|warn|error)$/);
    assert.match(l.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(l.component, 'agent');
  }
  assert.ok(lines.some((l) => l.level === 'info' && l.msg === 'agent started'));
});

test('--log-format text: one readable line per event, from the flag, the env or the config file', async () => {
  const config = path.join(dir, 'text.yaml');
  writeFileSync(config, 'log-format: text\n');
  for (const [args, env] of [
    [[...REPLAY, '--log-format', 'text'], {}],
    [REPLAY, { SNOWTAP_LOG_FORMAT: 'text' }],
    [[...REPLAY, '--config', config], {}],
  ] as [string[], Record<string, string>][]) {
    const r = await snowtap(args, env);
    assert.equal(r.code, 1, r.stderr);
    assert.doesNotMatch(r.stderr, /^\{/m);
    assert.match(r.stderr, /^\d{4}-\d\d-\d\dT[\d:.]+Z INFO {2}agent: agent started id=\S+ /m);
    assert.match(
      r.stderr,
      /^\S+Z WARN {2}agent: link connection failed; retrying with backoff err="connect ECONNREFUSED 127\.0\.0\.1:1 \(ECONNREFUSED\)"$/m,
    );
  }
});

test('--log-level: from the flag, the env or the config file; flags win', async () => {
  const config = path.join(dir, 'level.json');
  writeFileSync(config, JSON.stringify({ 'log-level': 'error' }));
  const levels = (r: Run) => new Set(r.stderr.match(/"level":"\w+"/g));
  const byFlag = await snowtap([...REPLAY, '--log-level', 'warn']);
  assert.deepEqual(levels(byFlag), new Set(['"level":"warn"', '"level":"error"']));
  const byEnv = await snowtap(REPLAY, { SNOWTAP_LOG_LEVEL: 'error' });
  assert.deepEqual(levels(byEnv), new Set(['"level":"error"']));
  const byFile = await snowtap([...REPLAY, '--config', config]);
  assert.deepEqual(levels(byFile), new Set(['"level":"error"']));
  const flagWins = await snowtap([...REPLAY, '--config', config, '--log-level', 'info']);
  assert.ok(levels(flagWins).has('"level":"info"'), flagWins.stderr);
});

test('bad usage or configuration: exit 2, one line naming the problem, no stack trace', async () => {
  const cases: [string[], RegExp][] = [
    [
      ['agent', '--log-level', 'loud'],
      /^snowtap agent: --log-level: must be one of fatal\|error\|warn\|info\|debug\|trace\|silent, got 'loud'\n$/,
    ],
    [
      ['convert', '--log-format', 'xml', CAPTURE],
      /^snowtap convert: --log-format: must be one of json\|text, got 'xml'\n$/,
    ],
    [['enricher', '--listen', 'nope'], /^snowtap enricher: --listen: expected HOST:PORT, got 'nope'\n$/],
    // A library's own option check (the chunk writer's), not the CLI's: still exit 2, one line.
    [
      [
        'enricher',
        '--output-dir',
        '',
        '--listen',
        '127.0.0.1:0',
        '--metrics-listen',
        '127.0.0.1:0',
        '--log-level',
        'silent',
      ],
      /^snowtap enricher: chunk writer option outputDir is required \(OUTPUT_INVALID_OPTION\)\n$/,
    ],
  ];
  for (const [args, re] of cases) {
    const r = await snowtap(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re, args.join(' '));
  }
});

test('text format: a line of its own for each event, fields as key=value', () => {
  const line = textLine(
    JSON.stringify({
      level: 'warn',
      time: '2026-01-02T03:04:05.006Z',
      component: 'enricher',
      msg: 'x y',
      n: 3,
      s: 'a b',
      t: 'ok',
    }),
  );
  assert.equal(line, '2026-01-02T03:04:05.006Z WARN  enricher: x y n=3 s="a b" t=ok\n');
});
