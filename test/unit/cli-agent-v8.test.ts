// `snowtap agent` sizes V8's young generation itself (cli/agent-v8.ts) unless the user did.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AGENT_V8_FLAGS, youngGenerationSizedByUser } from '../../cli/agent-v8';

test('the agent keeps the young generation at its initial size unless node flags or NODE_OPTIONS size it', () => {
  assert.deepEqual(AGENT_V8_FLAGS, ['--semi-space-growth-factor=1']);
  assert.equal(youngGenerationSizedByUser([], ''), false);
  assert.equal(youngGenerationSizedByUser(['--enable-source-maps'], '--max-old-space-size=256'), false);
  assert.equal(youngGenerationSizedByUser(['--max-semi-space-size=4'], ''), true);
  assert.equal(youngGenerationSizedByUser([], '--trace-gc  --max_semi_space_size=8'), true);
  assert.equal(youngGenerationSizedByUser([], '--semi-space-growth-factor=2'), true);
  assert.equal(youngGenerationSizedByUser(['--semi_space_growth_factor', '2'], ''), true);
  // Other semi-space flags do not count as sizing it.
  assert.equal(youngGenerationSizedByUser(['--min-semi-space-size=1'], ''), false);
});
