#!/usr/bin/env node
// The `snowtap` executable: dispatches to a subcommand. Exit codes: 0 success,
// 1 runtime failure, 2 bad usage or configuration. Either way one line on stderr names the
// problem (the stack too with SNOWTAP_LOG_LEVEL=debug or trace).
import './compile-cache';
import './agent-v8';
import { UsageError } from './options';
import { versionLine } from './version';

type Main = (argv: readonly string[]) => Promise<number>;

const COMMANDS: Record<string, { main: () => Promise<Main>; summary: string }> = {
  // Each command's code is loaded only when that command runs (the agent sidecar must not
  // carry the enricher's pipeline, policy tables and CSV writer).
  convert: {
    main: async () => (await import('./convert')).convertMain,
    summary: 'Frame Streams capture files -> CSV chunks (backfill)',
  },
  enricher: { main: async () => (await import('./enricher')).enricherMain, summary: 'the enricher server' },
  agent: {
    main: async () => (await import('./agent')).agentMain,
    summary: 'the sidecar relay: dnstap in, batches to the enrichers',
  },
  demo: {
    main: async () => (await import('./demo')).demoMain,
    summary: 'the whole pipeline on this machine with a synthetic resolver, then a summary',
  },
  loadtest: {
    main: async () => (await import('./loadtest')).loadtestMain,
    summary: 'load generator and measurement harness (rebalance, producer)',
  },
};

function usage(): string {
  const lines = [
    'Usage: snowtap <command> [options]   (snowtap <command> --help for its options)',
    '       snowtap --version',
    '',
    'Commands:',
  ];
  for (const [name, c] of Object.entries(COMMANDS)) lines.push(`  ${name.padEnd(10)} ${c.summary}`);
  return lines.join('\n') + '\n';
}

/** A configuration problem found by a library (its option check), not a runtime failure. */
function isConfigError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return (
    err instanceof UsageError ||
    (typeof code === 'string' && (code.startsWith('POLICY_') || code.endsWith('_INVALID_OPTION')))
  );
}

/** One line naming the problem: the message, and the error's code when it has one. */
export function errorLine(command: string, err: unknown): string {
  const e = err instanceof Error ? err : new Error(String(err));
  const code = (e as { code?: unknown }).code;
  const tagged = typeof code === 'string' && !e.message.includes(code) && !(err instanceof UsageError);
  const message = e.message.replace(/\s*\n\s*/g, ' ');
  const debug = /^(debug|trace)$/.test(process.env.SNOWTAP_LOG_LEVEL ?? '');
  return `snowtap${command ? ` ${command}` : ''}: ${message}${tagged ? ` (${code})` : ''}\n${debug && e.stack ? `${e.stack}\n` : ''}`;
}

export async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version') {
    process.stdout.write(versionLine());
    return 0;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    process.stderr.write(`snowtap: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  const end = rest.indexOf('--');
  if ((end < 0 ? rest : rest.slice(0, end)).includes('--version')) {
    process.stdout.write(versionLine());
    return 0;
  }
  try {
    return await (await cmd.main())(rest);
  } catch (err) {
    process.stderr.write(errorLine(name, err));
    return isConfigError(err) ? 2 : 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      process.stderr.write(errorLine('', err));
      process.exitCode = 1;
    },
  );
}
