// common/secret-files.ts: the watcher behind Secret rotation (issue 10), on files only. The
// kubelet layout (test/support/kubelet-secret.ts) is what the processes see; the certificate
// checks themselves need openssl-made certificates and run in test/e2e/secret-rotation.test.ts.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import {
  readOrEmpty,
  SecretWatch,
  secretCounts,
  tokenFromBytes,
  withoutTrailingNewline,
} from '../../common/secret-files';
import { captureLog } from '../support/agent-harness';
import { KubeletSecret } from '../support/kubelet-secret';

test('a kubelet ..data swap is picked up by re-reading the path; bad and unreadable updates keep the current value', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'snowtap-secret-unit-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const secret = new KubeletSecret(path.join(dir, 'mount'), { token: 'one\n' });
  const file = secret.path('token');
  const { log, lines } = captureLog();
  let current = tokenFromBytes(fs.readFileSync(file), file).toString();
  const w = new SecretWatch<Buffer>({
    id: 'link_token',
    what: 'link auth token',
    paths: [file],
    initial: [readOrEmpty(file)],
    load: ([b]) => tokenFromBytes(b!, file),
    apply: (tok) => {
      current = tok.toString();
    },
    log,
  });
  assert.equal(w.check(), false, 'unchanged');
  secret.rotate({ token: 'two\n' });
  assert.equal(w.check(), true);
  assert.equal(current, 'two');
  assert.equal(w.check(), false, 'applied once');
  secret.rotate({ token: '\n' });
  assert.equal(w.check(), false);
  assert.equal(w.check(), false);
  assert.equal(current, 'two', 'an empty token is refused');
  const refused = lines.filter((l) => String(l.msg).startsWith('link auth token refused'));
  assert.equal(refused.length, 1, 'logged once per content');
  assert.match(String(refused[0]!.msg), /the token file is empty; keeping the current one/);
  fs.rmSync(path.join(dir, 'mount'), { recursive: true });
  assert.equal(w.check(), false);
  assert.equal(w.check(), false);
  assert.equal(lines.filter((l) => String(l.msg).includes('cannot re-read')).length, 1);
  assert.equal(current, 'two');
  assert.deepEqual(secretCounts([w as SecretWatch<unknown>]), {
    reloads: { link_token: 1 },
    failures: { link_token: 2 },
  });
  assert.deepEqual(withoutTrailingNewline(Buffer.from('x\r\n')), Buffer.from('x'));
});
