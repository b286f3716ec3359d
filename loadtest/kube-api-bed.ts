// The Kubernetes API server of the autoscale bed, for agents with --discovery: a NAMED
// STAND-IN (fake-kube-api.ts; no kube-apiserver can run here) that runs INSIDE the bed's network
// namespace, where the agents are, and serves the enricher Service's EndpointSlice as the
// EndpointSlice controller would write it: a pod is in it once ready, out once terminating.
// The bed changes the slice in the same step as kube-proxy's rules (cluster-bed.ts
// updateEndpoints), as both follow the same readiness in a cluster.
//
//   node kube-api-bed.js serve DIR NAMESPACE SERVICE PORT_NAME PORT
//     listens on 127.0.0.1 (a random port), writes DIR/kubeconfig, prints `ready\n`; then each
//     stdin line, a JSON array of {ip, pod}, replaces the slice's endpoints and is answered
//     `ok\n`.

import path from 'node:path';
import readline from 'node:readline';
import { BedError } from './bed-errors';
import { endpointSlice, FakeKubeApi, pod } from './fake-kube-api';
import type { Netns } from './netns';
import { LineChannel } from './pod-probe';

const MAIN = path.resolve(__dirname, 'kube-api-bed.js');
const TOKEN = 'snowtap-bed-agent-token';

async function serve(dir: string, namespace: string, service: string, portName: string, port: number) {
  const api = await FakeKubeApi.start({ token: TOKEN });
  api.writeKubeconfig(dir);
  const apply = (eps: { ip: string; pod: string }[]) =>
    api.apply(
      endpointSlice({
        name: `${service}-bed01`,
        service,
        namespace,
        ports: [{ name: portName, port }],
        endpoints: eps.map((e) => pod(e.ip, e.pod)),
      }),
    );
  apply([]);
  const lines = readline.createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    apply(JSON.parse(line) as { ip: string; pod: string }[]);
    process.stdout.write('ok\n');
  });
  lines.on('close', () => void api.close().then(() => process.exit(0)));
  process.on('SIGTERM', () => void api.close().then(() => process.exit(0)));
  process.stdout.write('ready\n');
}

/** The host side: starts the server in `netns`, then publishes ready endpoints. */
export class KubeApiBed {
  private constructor(
    private readonly channel: LineChannel,
    /** KUBECONFIG for the agents (in the bed's work directory). */
    readonly kubeconfig: string,
  ) {}

  static async start(
    netns: Netns,
    dir: string,
    o: { namespace: string; service: string; portName: string; port: number },
  ): Promise<KubeApiBed> {
    const proc = netns.spawn([
      process.execPath,
      MAIN,
      'serve',
      dir,
      o.namespace,
      o.service,
      o.portName,
      String(o.port),
    ]);
    const bed = new KubeApiBed(new LineChannel(proc), path.join(dir, 'kubeconfig'));
    const first = await bed.channel.next(15_000, 'API server stand-in start');
    if (first !== 'ready') throw new BedError('BED_PROBE_FAILED', `API server stand-in: ${first}`);
    return bed;
  }

  /** The slice now lists exactly these ready pods. */
  async publish(endpoints: readonly { ip: string; pod: string }[]): Promise<void> {
    const answer = await this.channel.exchange(JSON.stringify(endpoints), 5_000, 'EndpointSlice update');
    if (answer !== 'ok') throw new BedError('BED_PROBE_FAILED', 'EndpointSlice update failed');
  }

  close(): Promise<void> {
    return this.channel.close();
  }
}

if (require.main === module) {
  const [role, dir, ns, svc, portName, port] = process.argv.slice(2);
  if (role === 'serve' && port !== undefined) {
    serve(dir!, ns!, svc!, portName!, Number(port)).catch((err) => {
      process.stderr.write(`${(err as Error).stack}\n`);
      process.exit(2);
    });
  } else {
    process.stderr.write('usage: kube-api-bed.js serve DIR NAMESPACE SERVICE PORT_NAME PORT\n');
    process.exit(2);
  }
}
