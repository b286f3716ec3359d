// The Docker image, built from this tree and run with testcontainers on a real engine the way
// the Helm chart runs it: uid 10001, read-only root file system, no capabilities, writes only to
// mounted volumes. The enricher answers /healthz on the host network, takes an agent container's
// replay, and exits 0 on SIGTERM with the rows committed; `snowtap convert` writes CSV chunks into
// a mounted directory. Without Docker: skip, or FAIL
// when SNOWTAP_REQUIRE_INTEROP=1 (CI runs scripts/ci/docker-setup.sh first).
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { buildImage, docker, exitCodeOf, loadTestcontainers, requireDocker } from '../support/docker';
import { parseCsvText } from '../support/output-rows';
import { FIXTURES_DIR, freePort } from '../support/peers';

const UID = 10001;
const CAPTURE = 'unbound-local-unix.fstrm';
const tmp = mkdtempSync(path.join(tmpdir(), 'snowtap-docker-'));
const containers: string[] = [];
after(async () => {
  for (const id of containers) await docker(['rm', '-f', id]).catch(() => undefined);
  // Files written by uid 10001 inside the container are ours to delete as the test user.
  rmSync(tmp, { recursive: true, force: true });
});

/** A directory the container's uid can write to (the chart gets this from fsGroup or mount options). */
function writableDir(prefix: string): string {
  const dir = mkdtempSync(path.join(tmp, prefix));
  chmodSync(dir, 0o777);
  return dir;
}

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p));
    else out.push(p);
  }
  return out;
}

/** Data rows of the committed chunks of enricher `id` under `dir` (header and owner checked). */
function csvRows(dir: string, id: string): string[] {
  const chunk = new RegExp(`/\\d{4}/\\d{2}/\\d{2}/\\d{2}/snowtap-${id}-[^/]+\\.csv$`);
  const rows: string[] = [];
  for (const f of filesUnder(dir).filter((x) => chunk.test(x))) {
    assert.equal(statSync(f).uid, UID, `${f} is written by uid ${UID}`);
    const lines = readFileSync(f, 'utf8').split('\r\n');
    assert.match(lines[0]!, /^record_id,event_time,message_type,/);
    rows.push(...lines.slice(1).filter((l) => l !== ''));
  }
  return rows;
}

/** Runs a container to its exit (code 0 expected) and returns its id and output. */
async function runToExit(
  image: string,
  mounts: { source: string; target: string; mode: 'ro' | 'rw' }[],
  command: string[],
) {
  const { Wait } = loadTestcontainers();
  let logs = '';
  const started = await lockedDown(image)
    .withBindMounts(mounts)
    .withCommand(command)
    .withLogConsumer((stream) => stream.on('data', (d: Buffer | string) => (logs += d.toString())))
    .withWaitStrategy(Wait.forOneShotStartup())
    .withStartupTimeout(120_000)
    .start();
  containers.push(started.getId());
  return { code: await exitCodeOf(started.getId()), logs };
}

/** GenericContainer with the restrictions the chart's securityContext applies. */
function lockedDown(image: string) {
  const { GenericContainer } = loadTestcontainers();
  class Restricted extends GenericContainer {
    readOnlyRoot(): this {
      this.hostConfig.ReadonlyRootfs = true;
      this.hostConfig.CapDrop = ['ALL'];
      this.hostConfig.SecurityOpt = ['no-new-privileges'];
      return this;
    }
  }
  // No bridge on CI's engine: the container shares the host's loopback.
  return new Restricted(image).withNetworkMode('host').readOnlyRoot();
}

test('the image: uid 10001, node as PID 1, production dependencies only, protos beside the code', {
  timeout: 900_000,
}, async (t) => {
  if (!(await requireDocker(t))) return;
  const image = await buildImage();
  const r = await docker([
    'image',
    'inspect',
    '--format',
    '{{.Config.User}}|{{json .Config.Entrypoint}}|{{.Config.WorkingDir}}',
    image,
  ]);
  assert.equal(r.code, 0, r.stderr);
  const [user, entrypoint, workdir] = r.stdout.trim().split('|');
  assert.equal(user, `${UID}:${UID}`);
  assert.deepEqual(JSON.parse(entrypoint!), ['node', '/app/dist/cli/main.js']);
  assert.equal(workdir, '/app');
  // Production dependencies only, the .proto files next to the compiled code, no tests.
  const probe = [
    "const fs = require('fs');",
    'console.log(JSON.stringify({',
    "  uid: process.getuid(), typescript: fs.existsSync('/app/node_modules/typescript'),",
    "  promClient: fs.existsSync('/app/node_modules/prom-client'),",
    "  protos: ['dnstap/dnstap.proto', 'link/link.proto'].every((p) => fs.existsSync('/app/dist/proto/' + p)),",
    "  unitTests: ['unit', 'interop', 'e2e'].some((t) => fs.existsSync('/app/dist/test/' + t)) }));",
  ].join('\n');
  const inside = await docker([
    'run',
    '--rm',
    '--read-only',
    '--network',
    'none',
    '--entrypoint',
    'node',
    image,
    '-e',
    probe,
  ]);
  assert.equal(inside.code, 0, inside.stderr);
  assert.deepEqual(JSON.parse(inside.stdout), {
    uid: UID,
    typescript: false,
    promClient: true,
    protos: true,
    unitTests: false,
  });
});

test('enricher and agent in read-only containers: /healthz, a replay acknowledged, SIGTERM exits 0', {
  timeout: 900_000,
}, async (t) => {
  if (!(await requireDocker(t))) return;
  const image = await buildImage();
  const { Wait } = loadTestcontainers();
  const [link, metrics, agentMetrics] = [await freePort(), await freePort(), await freePort()];
  const data = writableDir('data-');
  let logs = '';
  const started = await lockedDown(image)
    .withBindMounts([{ source: data, target: '/data', mode: 'rw' }])
    .withCommand([
      'enricher',
      `--listen=127.0.0.1:${link}`,
      `--metrics-listen=127.0.0.1:${metrics}`,
      '--output-dir=/data',
      '--id=docker-test',
    ])
    .withLogConsumer((stream) => stream.on('data', (d: Buffer | string) => (logs += d.toString())))
    .withWaitStrategy(Wait.forLogMessage(/"msg":"enricher ready"/))
    .withStartupTimeout(60_000)
    .start();
  containers.push(started.getId());

  const health = await fetch(`http://127.0.0.1:${metrics}/healthz`);
  assert.equal(health.status, 200);
  assert.equal((await health.text()).trim(), 'ok');
  const ready = await fetch(`http://127.0.0.1:${metrics}/readyz`);
  assert.equal(ready.status, 200, await ready.text());
  const exposition = await (await fetch(`http://127.0.0.1:${metrics}/metrics`)).text();
  assert.match(exposition, /^snowtap_enricher_ready 1$/m);

  // The process runs as 10001 (the host's view of the container), and what it wrote is 10001's.
  const top = await docker(['top', started.getId()]);
  assert.match(
    top.stdout,
    new RegExp(`^${UID}\\s.*\\snode /app/dist/cli/main\\.js enricher`, 'm'),
    top.stdout,
  );
  const written = readdirSync(data).map((e) => path.join(data, e));
  assert.ok(written.length > 0, 'the enricher prepares its output directory');
  for (const f of written) assert.equal(statSync(f).uid, UID, `${f} owner`);

  // An agent container replays a capture into it and exits 0 once every batch is acknowledged.
  const agent = await runToExit(
    image,
    [{ source: FIXTURES_DIR, target: '/in', mode: 'ro' }],
    [
      'agent',
      `--input-file=/in/${CAPTURE}`,
      `--enricher=127.0.0.1:${link}`,
      `--metrics-listen=127.0.0.1:${agentMetrics}`,
      '--id=docker-agent',
    ],
  );
  assert.equal(agent.code, 0, agent.logs);

  const t0 = Date.now();
  const stopped = await started.stop({ timeout: 30_000, remove: false });
  const elapsed = Date.now() - t0;
  assert.equal(await exitCodeOf(stopped.getId()), 0, `exit code after SIGTERM; logs:\n${logs}`);
  assert.ok(elapsed < 25_000, `SIGTERM to exit took ${elapsed} ms`);
  assert.match(logs, /"msg":"enricher draining"/);
  assert.match(logs, /"code":0,.*"msg":"enricher stopped"/);
  // The drain committed the acknowledged records as CSV rows on the mounted volume.
  const rows = csvRows(data, 'docker-test');
  assert.ok(rows.length > 0, `no rows under ${data}: ${filesUnder(data).join(', ')}\n${logs}`);
  assert.ok(
    rows.every((r) => r.startsWith('docker-agent/')),
    'record ids carry the agent id',
  );
});

test('snowtap convert inside the image writes CSV chunks to a mounted directory', {
  timeout: 900_000,
}, async (t) => {
  if (!(await requireDocker(t))) return;
  const image = await buildImage();
  const out = writableDir('out-');
  const run = await runToExit(
    image,
    [
      { source: FIXTURES_DIR, target: '/in', mode: 'ro' },
      { source: out, target: '/out', mode: 'rw' },
    ],
    ['convert', '--output-dir=/out', '--id=docker-convert', `/in/${CAPTURE}`],
  );
  assert.equal(run.code, 0, run.logs);
  const rows = csvRows(out, 'docker-convert');
  assert.ok(rows.length > 0, `no rows under ${out}: ${filesUnder(out).join(', ')}\n${run.logs}`);
  // enricher_id by name: columns after it are appended over time (the CSV contract).
  const header = readFileSync(filesUnder(out).find((f) => f.endsWith('.csv'))!, 'utf8').split('\r\n')[0]!;
  const parsed = await parseCsvText(`${header}\r\n${rows.join('\r\n')}\r\n`);
  assert.ok(
    parsed.every((r) => r.enricher_id === 'docker-convert'),
    'enricher_id is the --id given',
  );
});
