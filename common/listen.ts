// The one `listen`: start a net/http/tls server listening and wait until it is bound. The
// 'error' listener it adds is removed either way, so a later error reaches the server's own
// handlers and not a settled promise.

import net from 'node:net';

/** Listens with `options` and resolves once bound; rejects with the listen error (EADDRINUSE ...). */
export function listen(server: net.Server, options: net.ListenOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen(options, () => {
      server.removeListener('error', onError);
      resolve();
    });
  });
}

/** The port of a server bound to TCP (not a unix socket). */
export function boundPort(server: net.Server): number {
  return (server.address() as net.AddressInfo).port;
}

/** A TCP port on `host` that was free a moment ago (bound to port 0, then released). */
export async function freeTcpPort(host = '127.0.0.1'): Promise<number> {
  const s = net.createServer();
  await listen(s, { port: 0, host });
  const port = boundPort(s);
  await new Promise((resolve) => s.close(resolve));
  return port;
}
