// Secrets rotated the way the kubelet rotates mounted Secrets (issue 10): the link token, the
// enricher's server certificate/key/CA and the agent's client certificate/key/CA live in
// kubelet-style volumes (test/support/kubelet-secret.ts: `..data` symlink swap, which a file
// watch misses). Real `snowtap agent` and `snowtap enricher` processes pick the new material up
// without a restart: new connections use it, the connection already open carries on; a refused
// update (an expired certificate, a key of another certificate) is logged and the current
// material stays in use.
//
// The second generation is signed by another CA, so every check is sharp: a side still on the
// old certificate, CA or token could not complete a handshake with the new one.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import tls from 'node:tls';
import { BULK, fixturePayloads, Producer } from '../support/agent-harness';
import { makeCerts, makeExpiredCert } from '../support/certs';
import { KubeletSecret } from '../support/kubelet-secret';
import { TestAgent } from '../support/link-client';
import {
  exitWithin,
  freeTcpPort,
  metric,
  restartEnricher,
  startAgent,
  startEnricher,
  startSnowtap,
  tmpDir,
  waitUntil,
} from '../support/pipeline-procs';

const RELOAD = ['--secret-reload-interval', '0.2'];
const read = (p: string) => fs.readFileSync(p);

/** Lines of a process log whose msg contains `text`. */
function logged(log: string, text: string): Record<string, unknown>[] {
  return log
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => String(l.msg).includes(text));
}

/** The enricher's certificate CN as seen by a fresh TLS connection trusting `ca`, or the error. */
async function serverCn(port: number, ca: Buffer, cert?: Buffer, key?: Buffer): Promise<string> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca, cert, key }, () => {
      const cn = s.getPeerCertificate().subject?.CN;
      s.destroy();
      resolve(`CN=${cn}`);
    });
    s.once('error', (err) => resolve(`error: ${err.message}`));
  });
}

test('kubelet-style Secret rotation: token and certificates picked up without restart; bad ones refused', {
  timeout: 90_000,
}, async (t) => {
  const dir = tmpDir(t, 'snowtap-secrets-');
  fs.mkdirSync(path.join(dir, 'g1'));
  fs.mkdirSync(path.join(dir, 'g2'));
  const g1 = makeCerts(path.join(dir, 'g1'));
  const g2 = makeCerts(path.join(dir, 'g2'));
  const expired = makeExpiredCert(
    path.join(dir, 'g2'),
    'expired-server',
    'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n',
  );
  const serverFiles = (g: typeof g1) => ({
    'tls.crt': read(g.serverCert),
    'tls.key': read(g.serverKey),
    'ca.crt': read(g.ca),
  });
  const clientFiles = (g: typeof g1) => ({
    'tls.crt': read(g.clientCert),
    'tls.key': read(g.clientKey),
    'ca.crt': read(g.ca),
  });
  const enricherTls = new KubeletSecret(path.join(dir, 'enricher-tls'), serverFiles(g1));
  const enricherToken = new KubeletSecret(path.join(dir, 'enricher-token'), { token: 'token-one\n' });
  const agentTls = new KubeletSecret(path.join(dir, 'agent-tls'), clientFiles(g1));
  const agentToken = new KubeletSecret(path.join(dir, 'agent-token'), { token: 'token-one\n' });

  const enricherArgs = [
    '--tls-cert',
    enricherTls.path('tls.crt'),
    '--tls-key',
    enricherTls.path('tls.key'),
    '--tls-ca',
    enricherTls.path('ca.crt'),
    '--auth-token-file',
    enricherToken.path('token'),
    ...RELOAD,
  ];
  let enricher = await startEnricher(t, path.join(dir, 'out'), enricherArgs);
  const socket = path.join(dir, 'dnstap.sock');
  const agent = await startAgent(t, [
    '--dnstap-socket',
    socket,
    '--enricher',
    `127.0.0.1:${enricher.linkPort}`,
    '--tls-ca',
    agentTls.path('ca.crt'),
    '--tls-cert',
    agentTls.path('tls.crt'),
    '--tls-key',
    agentTls.path('tls.key'),
    '--auth-token-file',
    agentToken.path('token'),
    '--switch-interval',
    '0',
    '--batch-linger-ms',
    '10',
    ...RELOAD,
  ]);
  await waitUntil(() => fs.existsSync(socket), 'the dnstap socket');
  const payloads = (await fixturePayloads(BULK)).slice(0, 300);
  const producer = await Producer.open(socket);
  const committed = (n: number) =>
    waitUntil(
      async () => (await metric(enricher.metricsPort, 'snowtap_enricher_rows_committed_total')) >= n,
      `${n} rows committed`,
    );

  // Generation 1 end to end.
  await producer.send(payloads.slice(0, 100));
  await committed(100);
  const attempts = await metric(agent.metricsPort, 'snowtap_agent_link_connect_attempts_total');

  // The enricher's Secrets rotate to generation 2 (another CA, another token).
  enricherTls.rotate(serverFiles(g2));
  enricherToken.rotate({ token: 'token-two\n' });
  await waitUntil(
    () =>
      logged(enricher.log(), 'link TLS certificate changed').length === 1 &&
      logged(enricher.log(), 'link auth token changed').length === 1,
    'the enricher reloads',
  );
  // New connections: the new certificate, the new CA for client certificates, the new token.
  assert.equal(
    await serverCn(enricher.linkPort, read(g2.ca), read(g2.clientCert), read(g2.clientKey)),
    'CN=server',
  );
  assert.match(
    await serverCn(enricher.linkPort, read(g1.ca), read(g1.clientCert), read(g1.clientKey)),
    /^error: /,
    'the old CA no longer verifies the enricher',
  );
  const g2Tls = { ca: read(g2.ca), cert: read(g2.clientCert), key: read(g2.clientKey) };
  const probe = await TestAgent.connect({ port: enricher.linkPort, tls: g2Tls, token: 'token-two' });
  assert.equal(await probe.answer(), 'welcome');
  probe.socket.destroy();
  const stale = await TestAgent.connect({ port: enricher.linkPort, tls: g2Tls, token: 'token-one' });
  assert.equal(await stale.answer(), 'reject');
  assert.equal(stale.reject?.message, 'auth token does not match');
  stale.socket.destroy();
  // The agent's open connection (generation 1) carries on.
  await producer.send(payloads.slice(100, 200));
  await committed(200);
  assert.equal(await metric(agent.metricsPort, 'snowtap_agent_link_connect_attempts_total'), attempts);
  assert.equal(await metric(agent.metricsPort, 'snowtap_agent_link_connections_lost_total'), 0);

  // Refused updates: an expired certificate, then a key that is not the certificate's.
  enricherTls.rotate({ 'tls.crt': read(expired.cert), 'tls.key': read(expired.key), 'ca.crt': read(g2.ca) });
  await waitUntil(() => logged(enricher.log(), 'link TLS certificate refused').length === 1, 'refusal');
  const [refusal] = logged(enricher.log(), 'link TLS certificate refused');
  assert.equal(refusal!.level, 'error');
  assert.match(String(refusal!.msg), /expired on 2020-01-02T00:00:00\.000Z; keeping the current one/);
  enricherTls.rotate({
    'tls.crt': read(g2.serverCert),
    'tls.key': read(g2.clientKey),
    'ca.crt': read(g2.ca),
  });
  await waitUntil(() => logged(enricher.log(), 'link TLS certificate refused').length === 2, 'refusal 2');
  assert.match(
    String(logged(enricher.log(), 'link TLS certificate refused')[1]!.msg),
    /the key does not belong to the certificate/,
  );
  assert.equal(
    await serverCn(enricher.linkPort, read(g2.ca), read(g2.clientCert), read(g2.clientKey)),
    'CN=server',
    'the last good certificate is still served',
  );
  const scraped = await (await fetch(`http://127.0.0.1:${enricher.metricsPort}/metrics`)).text();
  assert.match(scraped, /^snowtap_enricher_secret_reloads_total\{secret="link_tls"\} 1$/m);
  assert.match(scraped, /^snowtap_enricher_secret_reloads_total\{secret="link_token"\} 1$/m);
  assert.match(scraped, /^snowtap_enricher_secret_reload_failures_total\{secret="link_tls"\} 2$/m);

  // The agent's Secrets rotate; a refused one first (expired), then generation 2.
  const expiredClient = makeExpiredCert(
    path.join(dir, 'g2'),
    'expired-client',
    'extendedKeyUsage=clientAuth\n',
  );
  agentTls.rotate({
    'tls.crt': read(expiredClient.cert),
    'tls.key': read(expiredClient.key),
    'ca.crt': read(g2.ca),
  });
  await waitUntil(
    () => logged(agent.log(), 'link TLS client certificate refused').length === 1,
    'agent refusal',
  );
  assert.match(
    String(logged(agent.log(), 'link TLS client certificate refused')[0]!.msg),
    /expired on 2020-01-02/,
  );
  agentTls.rotate(clientFiles(g2));
  agentToken.rotate({ token: 'token-two\n' });
  await waitUntil(
    () =>
      logged(agent.log(), 'link TLS client certificate changed').length === 1 &&
      logged(agent.log(), 'link auth token changed').length === 1,
    'the agent reloads',
  );
  // A new connection of the agent: the enricher restarts (SIGTERM drain) on the same port with
  // generation 2 on disk; the agent re-dials with its new certificate, CA and token.
  enricherTls.rotate(serverFiles(g2)); // the operator fixes the Secret
  await waitUntil(() => logged(enricher.log(), 'link TLS certificate changed').length === 2, 'fixed');
  enricher.child.kill('SIGTERM');
  assert.equal(await exitWithin(enricher, 30_000, 'the enricher'), 0);
  enricher = await restartEnricher(t, enricher, enricherArgs);
  await producer.send(payloads.slice(200, 300));
  await committed(100);
  assert.deepEqual(logged(agent.log(), 'BAD_AUTH'), []);

  await producer.stop();
  agent.child.kill('SIGTERM');
  assert.equal(await exitWithin(agent, 30_000, 'the agent'), 0);
  enricher.child.kill('SIGTERM');
  assert.equal(await exitWithin(enricher, 30_000, 'the enricher'), 0);
  // The token never reaches a log.
  for (const log of [agent.log(), enricher.log()]) {
    assert.ok(!log.includes('token-one') && !log.includes('token-two'));
  }
});

test('dnstap TCP inputs (agent --dnstap-tcp, enricher --dnstap-listen): a rotated server certificate is served to new connections', {
  timeout: 60_000,
}, async (t) => {
  const dir = tmpDir(t, 'snowtap-dnstap-secrets-');
  fs.mkdirSync(path.join(dir, 'g1'));
  fs.mkdirSync(path.join(dir, 'g2'));
  const g1 = makeCerts(path.join(dir, 'g1'));
  const g2 = makeCerts(path.join(dir, 'g2'));
  const files = (g: typeof g1) => ({ 'tls.crt': read(g.serverCert), 'tls.key': read(g.serverKey) });
  const secret = new KubeletSecret(path.join(dir, 'dnstap-tls'), files(g1));
  const tlsArgs = [
    '--dnstap-tls-cert',
    secret.path('tls.crt'),
    '--dnstap-tls-key',
    secret.path('tls.key'),
    ...RELOAD,
  ];
  const enricherDnstap = await freeTcpPort();
  const enricher = await startEnricher(t, path.join(dir, 'out'), [
    '--dnstap-listen',
    `127.0.0.1:${enricherDnstap}`,
    ...tlsArgs,
  ]);
  const agentDnstap = await freeTcpPort();
  const agent = await startAgent(t, [
    '--dnstap-tcp',
    `127.0.0.1:${agentDnstap}`,
    '--enricher',
    `127.0.0.1:${enricher.linkPort}`,
    ...tlsArgs,
  ]);
  await waitUntil(
    async () => (await fetch(`http://127.0.0.1:${agent.metricsPort}/readyz`)).ok,
    'agent ready',
  );
  // Verified against a CA: the string says which generation answered.
  const verifies = async (port: number, ca: string) =>
    !(await serverCn(port, read(ca), undefined, undefined)).startsWith('error');
  for (const port of [enricherDnstap, agentDnstap]) {
    assert.equal(await verifies(port, g1.ca), true);
    assert.equal(await verifies(port, g2.ca), false);
  }
  secret.rotate(files(g2));
  for (const p of [enricher, agent])
    await waitUntil(() => logged(p.log(), 'dnstap TLS certificate changed').length === 1, 'dnstap reload');
  for (const port of [enricherDnstap, agentDnstap]) {
    assert.equal(await verifies(port, g1.ca), false);
    assert.equal(await verifies(port, g2.ca), true);
  }
  agent.child.kill('SIGTERM');
  enricher.child.kill('SIGTERM');
  assert.equal(await exitWithin(agent, 30_000, 'the agent'), 0);
  assert.equal(await exitWithin(enricher, 30_000, 'the enricher'), 0);
});

test('at start an expired certificate or a key of another certificate is a usage error naming the file', {
  timeout: 60_000,
}, async (t) => {
  const dir = tmpDir(t, 'snowtap-secrets-start-');
  const c = makeCerts(dir);
  const expired = makeExpiredCert(dir, 'expired-server', 'subjectAltName=IP:127.0.0.1\n');
  const run = async (args: string[]) => {
    const p = startSnowtap(t, args, 0);
    const code = await exitWithin(p, 20_000, args[0]!);
    return { code, log: p.log() };
  };
  const e = await run([
    'enricher',
    '--output-dir',
    path.join(dir, 'out'),
    '--tls-cert',
    expired.cert,
    '--tls-key',
    expired.key,
  ]);
  assert.equal(e.code, 2);
  assert.match(
    e.log,
    /--tls-cert\/--tls-key\/--tls-ca: .*expired-server\.pem: the certificate \(CN=expired-server\) expired on 2020-01-02/,
  );
  const a = await run([
    'agent',
    '--input-file',
    path.join(dir, 'none.fstrm'),
    '--enricher',
    '127.0.0.1:9',
    '--tls-ca',
    c.ca,
    '--tls-cert',
    c.clientCert,
    '--tls-key',
    c.serverKey,
  ]);
  assert.equal(a.code, 2);
  assert.match(a.log, /the key does not belong to the certificate/);
});
