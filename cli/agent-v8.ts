// Imported by main.ts before any command's code: V8 sizing for `snowtap agent`, the sidecar
// that sits beside every resolver. Its garbage is short-lived (spent batches, socket reads),
// so a young generation that V8 lets grow to 16-64 MiB of semi-spaces only raises its peak
// RSS. Heap sizes cannot change after start (`--max-semi-space-size` set here would be
// ignored), but the growth factor is read at every resize: at 1 the young generation stays at
// its initial size (1-2 MiB of semi-spaces), which is what `--max-semi-space-size=1` gave.
// --max-semi-space-size in NODE_OPTIONS (helm: agent.nodeOptions), or it or
// --semi-space-growth-factor on the node command line, wins: then nothing is set here. (Node
// refuses --semi-space-growth-factor in NODE_OPTIONS.) Measured: loadtest/PERFORMANCE.md "What changed, measured".
import { setFlagsFromString } from 'node:v8';

export const AGENT_V8_FLAGS = ['--semi-space-growth-factor=1'] as const;

/** Whether the user sized the young generation themselves (node flags or NODE_OPTIONS). */
export function youngGenerationSizedByUser(execArgv: readonly string[], nodeOptions: string): boolean {
  const all = [...execArgv, ...nodeOptions.split(/\s+/)];
  return all.some((a) => /^--(semi[-_]space[-_]growth[-_]factor|max[-_]semi[-_]space[-_]size)\b/.test(a));
}

if (
  process.argv[2] === 'agent' &&
  !youngGenerationSizedByUser(process.execArgv, process.env.NODE_OPTIONS ?? '')
) {
  for (const flag of AGENT_V8_FLAGS) setFlagsFromString(flag);
}
