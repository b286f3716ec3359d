// The chart's standalone agent (issue 10), run as rendered: `helm template` with
// ci/standalone-agent-values.yaml gives the container's arguments; the test starts the real
// agent with exactly those arguments, only the cluster addresses and mounted paths mapped to
// local ones (listen address, enricher Service, spool, the TLS Secret's files). A real DNS
// server with a TLS dnstap client, Unbound (`dnstap-tls: yes`, as CoreDNS's `dnstap tls://`),
// answers dnsperf's queries and sends its dnstap there; every frame reaches the CSV. The same
// arguments with the CI allow-list (the pod network only) refuse the loopback sender, counted.
// Needs helm, unbound, dnsperf and openssl: skipped, or FAILS under SNOWTAP_REQUIRE_INTEROP=1.
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { type TestContext, test } from 'node:test';
import { makeCerts } from '../support/certs';
import { get, render, requireTool } from '../support/helm';
import { findBinary, freePort, PEERS_DIR, requireInterop } from '../support/peers';
import {
  committedRows,
  exitWithin,
  freeTcpPort,
  metric,
  startEnricher,
  startSnowtap,
  tmpDir,
  waitReady,
  waitUntil,
} from '../support/pipeline-procs';

const QUERIES = 400;

/** The rendered container arguments with cluster addresses and mount paths mapped to local ones. */
function mapArgs(args: string[], map: Record<string, string>): string[] {
  return args.map((a) => {
    const eq = a.indexOf('=');
    if (!a.startsWith('--') || eq < 0) return a;
    const flag = a.slice(2, eq);
    return flag in map ? `--${flag}=${map[flag]}` : a;
  });
}

function renderUnbound(dir: string, dest: string, port: number): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(
      'bash',
      [path.join(PEERS_DIR, 'run-producer.sh'), 'unbound', dest, '0', '0'],
      { env: { ...process.env, RENDER_ONLY: '1', WORKDIR: dir, DNS_PORT: String(port) } },
      (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout.trim()),
    ),
  );
}

async function setup(t: TestContext, set: string[]) {
  const helm = requireTool(t, 'helm');
  if (!helm) return null;
  if (!requireInterop(t, ['unbound', 'dnsperf', 'openssl'])) return null;
  const objs = await render(helm, { values: ['ci/standalone-agent-values.yaml'], set });
  const container = get(objs, 'DaemonSet', 'snowtap-agent').spec.template.spec.containers[0] as {
    args: string[];
  };
  const dir = tmpDir(t, 'snowtap-standalone-');
  const certs = makeCerts(dir);
  const enricher = await startEnricher(t, path.join(dir, 'out'));
  const dnstapPort = await freeTcpPort();
  const metricsPort = await freeTcpPort();
  const argv = mapArgs(container.args, {
    'dnstap-tcp': `127.0.0.1:${dnstapPort}`,
    enricher: `127.0.0.1:${enricher.linkPort}`,
    'metrics-listen': `127.0.0.1:${metricsPort}`,
    'spool-dir': path.join(dir, 'spool'),
    'dnstap-tls-cert': certs.serverCert,
    'dnstap-tls-key': certs.serverKey,
  });
  // The pod's SNOWTAP_ID comes from the node name.
  const agent = startSnowtap(t, argv, metricsPort, { SNOWTAP_ID: 'node-1' });
  await waitReady(metricsPort);

  const dnsPort = await freePort({ udp: true });
  const conf = await renderUnbound(path.join(dir, 'unbound'), `tcp:127.0.0.1:${dnstapPort}`, dnsPort);
  // As CoreDNS's `dnstap tls://`: TLS, the server verified against the CA, no client certificate.
  fs.writeFileSync(
    conf,
    fs
      .readFileSync(conf, 'utf8')
      .replace(
        /dnstap-tls: no/,
        `dnstap-tls: yes\n  dnstap-tls-server-name: "localhost"\n  dnstap-tls-cert-bundle: "${certs.ca}"`,
      ),
  );
  const unbound: ChildProcess = spawn(findBinary('unbound')!, ['-d', '-c', conf], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let unboundLog = '';
  unbound.stderr!.on('data', (d: Buffer) => {
    unboundLog = (unboundLog + d.toString()).slice(-8000);
  });
  t.after(() => {
    if (unbound.exitCode === null && unbound.signalCode === null) unbound.kill('SIGKILL');
  });
  const qf = path.join(dir, 'queries.txt');
  fs.writeFileSync(qf, `${Array.from({ length: QUERIES }, (_, i) => `s${i}.w.tap.test A`).join('\n')}\n`);
  const dnsperf = () =>
    new Promise<{ sent: number; completed: number }>((resolve, reject) =>
      execFile(
        findBinary('dnsperf')!,
        ['-s', '127.0.0.1', '-p', String(dnsPort), '-d', qf, '-n', '1', '-Q', '400', '-c', '2', '-t', '2'],
        (err, stdout) => {
          if (err) return reject(err);
          resolve({
            sent: Number(/Queries sent:\s+(\d+)/.exec(stdout)?.[1]),
            completed: Number(/Queries completed:\s+(\d+)/.exec(stdout)?.[1]),
          });
        },
      ),
    );
  return { agent, enricher, unbound, dnsperf, argv, unboundLog: () => unboundLog };
}

test('the rendered standalone agent relays a real TLS dnstap sender (Unbound as CoreDNS would) to the CSV', {
  timeout: 90_000,
}, async (t) => {
  const s = await setup(t, ['standaloneAgent.allow={127.0.0.0/8}']);
  if (!s) return;
  assert.ok(
    s.argv.some((a) => a.startsWith('--dnstap-tls-cert=')),
    'TLS on, as rendered',
  );
  const m = (n: string) => metric(s.agent.metricsPort, `snowtap_agent_${n}`);
  await waitUntil(
    async () => (await m('input_connections')) === 1,
    'Unbound connected over TLS',
    15_000,
  ).catch((err) => {
    throw new Error(
      `${(err as Error).message}\nunbound: ${s.unboundLog()}\nagent: ${s.agent.log().slice(-2000)}`,
    );
  });
  const perf = await s.dnsperf();
  assert.equal(perf.completed, QUERIES, `dnsperf: ${JSON.stringify(perf)}`);
  await waitUntil(
    async () => (await m('records_in_total')) >= 2 * QUERIES,
    'query and response frames in',
    15_000,
  );
  const received = await m('records_in_total');
  await waitUntil(async () => (await m('records_acked_total')) === received, 'all acknowledged', 20_000);
  s.unbound.kill('SIGTERM');
  s.agent.child.kill('SIGTERM');
  assert.equal(await exitWithin(s.agent, 30_000, 'agent'), 0);
  s.enricher.child.kill('SIGTERM');
  assert.equal(await exitWithin(s.enricher, 25_000, 'enricher'), 0);
  const rows = await committedRows(s.enricher.outputDir);
  const mine = rows.filter((r) => /^s\d+\.w\.tap\.test$/.test(r.qname ?? ''));
  t.diagnostic(`${perf.completed} queries, ${received} frames over TLS, ${rows.length} rows`);
  assert.equal(rows.length, received, 'every frame is a row');
  assert.equal(mine.filter((r) => r.message_type === 'CLIENT_QUERY').length, QUERIES);
  assert.equal(mine.filter((r) => r.message_type === 'CLIENT_RESPONSE').length, QUERIES);
  assert.ok(
    rows.every((r) => r.agent_id === 'node-1'),
    'agent id from the node name',
  );
});

test('the rendered allow-list (pod network only) refuses a loopback sender and counts it', {
  timeout: 60_000,
}, async (t) => {
  const s = await setup(t, []);
  if (!s) return;
  assert.ok(s.argv.includes('--dnstap-allow=10.244.0.0/16,fd00:10:244::/56'));
  const refused = () =>
    fetch(`http://127.0.0.1:${s.agent.metricsPort}/metrics`)
      .then((r) => r.text())
      .then((text) => {
        const line = text
          .split('\n')
          .find(
            (l) =>
              l.startsWith('snowtap_agent_input_connections_refused_total{') && l.includes('not-allowed'),
          );
        return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
      });
  await waitUntil(async () => (await refused()) >= 1, 'a refused connection counted', 20_000);
  assert.equal(await metric(s.agent.metricsPort, 'snowtap_agent_records_in_total'), 0);
  s.unbound.kill('SIGTERM');
  s.agent.child.kill('SIGTERM');
  assert.equal(await exitWithin(s.agent, 30_000, 'agent'), 0);
});
