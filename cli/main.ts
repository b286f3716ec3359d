#!/usr/bin/env node
// The `snowtap` executable: dispatches to a subcommand. Exit codes: 0 success,
// 1 runtime failure, 2 bad usage or configuration (with a message naming the problem).
import { UsageError } from './options';

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
    '',
    'Commands:',
  ];
  for (const [name, c] of Object.entries(COMMANDS)) lines.push(`  ${name.padEnd(10)} ${c.summary}`);
  return lines.join('\n') + '\n';
}

export async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name === undefined ? 2 : 0;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    process.stderr.write(`snowtap: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  try {
    return await (await cmd.main())(rest);
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('POLICY_')) {
      process.stderr.write(`snowtap ${name}: ${(err as Error).message}\n`);
      return 2;
    }
    process.stderr.write(`snowtap ${name}: ${(err as Error).stack ?? err}\n`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      process.stderr.write(`snowtap: ${err}\n`);
      process.exitCode = 1;
    },
  );
}
