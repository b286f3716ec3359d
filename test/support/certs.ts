// Throwaway TLS material for tests, made with the real openssl binary at test time (Node has
// no certificate generator): a CA, a server cert for 127.0.0.1/localhost, a client cert, and
// a stranger's cert from a CA nobody trusts.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface Certs {
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A client certificate from a CA the server does not trust. */
  strangerCert: string;
  strangerKey: string;
  /** The CA that signed the stranger's certificate (one the server does not trust). */
  strangerCa: string;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}

/** A throwaway CA, a server cert for 127.0.0.1/localhost, a client cert, and a stranger's. */
export function makeCerts(dir: string): Certs {
  const key = (name: string) =>
    openssl(dir, ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', name]);
  const ca = (name: string) => {
    key(`${name}.key`);
    openssl(dir, [
      'req',
      '-x509',
      '-new',
      '-key',
      `${name}.key`,
      '-subj',
      `/CN=${name}`,
      '-days',
      '2',
      '-out',
      `${name}.pem`,
    ]);
  };
  const leaf = (name: string, caName: string, ext: string) => {
    key(`${name}.key`);
    openssl(dir, ['req', '-new', '-key', `${name}.key`, '-subj', `/CN=${name}`, '-out', `${name}.csr`]);
    fs.writeFileSync(path.join(dir, `${name}.ext`), ext);
    openssl(dir, [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      `${caName}.pem`,
      '-CAkey',
      `${caName}.key`,
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      `${name}.ext`,
      '-out',
      `${name}.pem`,
    ]);
  };
  ca('ca');
  ca('stranger-ca');
  leaf('server', 'ca', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  leaf('client', 'ca', 'extendedKeyUsage=clientAuth\n');
  leaf('stranger', 'stranger-ca', 'extendedKeyUsage=clientAuth\n');
  const p = (f: string) => path.join(dir, f);
  return {
    ca: p('ca.pem'),
    serverCert: p('server.pem'),
    serverKey: p('server.key'),
    clientCert: p('client.pem'),
    clientKey: p('client.key'),
    strangerCert: p('stranger.pem'),
    strangerKey: p('stranger.key'),
    strangerCa: p('stranger-ca.pem'),
  };
}

/**
 * A leaf certificate signed by the CA made by makeCerts in `dir` whose validity ended long ago
 * (2020-01-01 .. 2020-01-02): `openssl ca` is the one tool of OpenSSL 3.0 that takes dates.
 * Returns the certificate and key paths.
 */
export function makeExpiredCert(dir: string, name: string, ext: string): { cert: string; key: string } {
  openssl(dir, ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`]);
  openssl(dir, ['req', '-new', '-key', `${name}.key`, '-subj', `/CN=${name}`, '-out', `${name}.csr`]);
  fs.writeFileSync(path.join(dir, `${name}.ext`), ext);
  fs.writeFileSync(
    path.join(dir, `${name}-ca.cnf`),
    '[ca]\ndefault_ca=d\n[d]\ndatabase=index.txt\nnew_certs_dir=.\nserial=ca-serial\ndefault_md=sha256\npolicy=p\n[p]\ncommonName=supplied\n',
  );
  if (!fs.existsSync(path.join(dir, 'index.txt'))) fs.writeFileSync(path.join(dir, 'index.txt'), '');
  if (!fs.existsSync(path.join(dir, 'ca-serial'))) fs.writeFileSync(path.join(dir, 'ca-serial'), '1000\n');
  openssl(dir, [
    'ca',
    '-batch',
    '-notext',
    '-config',
    `${name}-ca.cnf`,
    '-cert',
    'ca.pem',
    '-keyfile',
    'ca.key',
    '-startdate',
    '20200101000000Z',
    '-enddate',
    '20200102000000Z',
    '-extfile',
    `${name}.ext`,
    '-in',
    `${name}.csr`,
    '-out',
    `${name}.pem`,
  ]);
  return { cert: path.join(dir, `${name}.pem`), key: path.join(dir, `${name}.key`) };
}
