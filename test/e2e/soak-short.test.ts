// The short form of `npm run soak` (loadtest/soak.ts) for CI: 75 s of agent -> two enrichers at
// a steady rate with policy reloads every 10 s, switches every 5 s and one enricher restart;
// 0 lost, 0 dropped, duplicates only from re-sent batches, clean exits, and the agent's RSS
// and heap flat by the report's slope test and with a bounded drift (last quarter of the samples
// after warm-up vs the first; a wider bound than the 30-minute run: 75 s is mostly warm-up).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { runSoak, SOAK_DEFAULTS, textReport } from '../../loadtest/soak';
import { tmpDir } from '../support/pipeline-procs';

test('soak, short form (75 s): 0 lost, duplicates within re-sent batches, memory flat', {
  timeout: 200_000,
}, async (t) => {
  const outDir = tmpDir(t, 'snowtap-soak-');
  const r = await runSoak({
    ...SOAK_DEFAULTS,
    outDir,
    durationS: 75,
    rate: 10_000,
    restartEveryS: 35,
    reloadEveryS: 10,
    switchIntervalS: 5,
    sampleEveryS: 2,
    warmupFraction: 0.3,
    flatMiB: 32,
    flatFraction: 0.25,
  });
  t.diagnostic(textReport(r));
  assert.ok(existsSync(path.join(outDir, 'soak-report.json')));
  assert.ok(!existsSync(path.join(outDir, 'out-a')), 'the audited CSV chunks are deleted (no --keep)');
  assert.equal(r.lost, 0, 'lost');
  assert.equal(r.dropped, 0, 'dropped');
  assert.ok(r.duplicatesWithinResent, `duplicates ${r.duplicates} within ${r.resentBatches} re-sent batches`);
  assert.ok(r.restarts >= 1, 'an enricher restarted');
  assert.ok(r.reloads >= 5, 'policy reloads');
  assert.deepEqual(Object.values(r.exitCodes), [0, 0, 0], 'clean exits');
  const agentFits = r.fits.filter((x) => x.name.startsWith('agent'));
  assert.deepEqual(agentFits.map((f) => f.metric).sort(), ['heap', 'rss'], 'agent RSS and heap sampled');
  for (const f of agentFits) {
    assert.ok(f.samples >= 20, `agent ${f.metric}: ${f.samples} samples`);
    assert.ok(f.flat, `agent ${f.metric}: growth ${f.growthMiB} MiB over the window, bound ${f.boundMiB}`);
    assert.ok(
      f.driftOk && f.driftMiB < f.boundMiB,
      `agent ${f.metric}: drift ${f.firstQuarterMiB} -> ${f.lastQuarterMiB} MiB (first vs last quarter), bound ${f.boundMiB}`,
    );
  }
});
