// A real etcd + kube-apiserver on loopback for the test/kube suite, the way envtest runs one:
// generated certificates and service-account keys, RBAC authorization, an admin identity (client
// certificate in system:masters) and ServiceAccount identities from the TokenRequest API.
//
// Binaries are built from the Go module proxy at the Kubernetes version pinned in versions.yaml, as
// part of the air-gapped bundle (~/.cache/tokenize-wiki/bundle/<version>/); etcd's version is the one that
// Kubernetes release tests against (its hack/lib/etcd.sh), so a Kubernetes bump moves etcd with it.
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as https from 'node:https';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import YAML from 'yaml';
import { z } from 'zod';
import {
  buildPaths,
  bundleDir,
  cacheRoot,
  ensureGoBuild,
  kubernetesBuilds,
  readKubernetesFacts,
} from '../../scripts/lib/bundle/go-builds.js';
import { ZxHost } from '../../scripts/lib/host.js';
import type { Install } from '../harness/announce.js';
import { repoRoot } from '../harness/paths.js';
import { exec, run, type ExecResult } from '../harness/proc.js';

const PinsSchema = z.object({
  kubernetes: z.string().regex(/^\d+\.\d+\.\d+$/, 'must look like 1.34.2'),
});

/** The pinned Kubernetes version (no leading v), read from versions.yaml at run time. */
export async function kubernetesVersion(): Promise<string> {
  const file = path.join(repoRoot, 'versions.yaml');
  const parsed = PinsSchema.safeParse(YAML.parse(await fs.readFile(file, 'utf8')));
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`${file}: key ${issue?.path.join('.') ?? '?'}: ${issue?.message ?? 'invalid'}`);
  }
  return parsed.data.kubernetes;
}

export { cacheRoot };

// ---------------------------------------------------------------------------------------------
// Binaries

export interface KubeBinaries {
  kubernetesVersion: string;
  etcdVersion: string;
  apiserver: string;
  kubectl: string;
  etcd: string;
  /** Seconds spent building in this call; 0 when everything came from the cache. */
  buildSeconds: number;
}

/**
 * Builds (once) and returns kube-apiserver, kubectl and etcd for the pinned Kubernetes version: the same
 * build, cache and lock as the air-gapped bundle (scripts/lib/bundle/go-builds.ts), so the suite and
 * `build-bundle` compile Kubernetes once between them. `log` receives one line per step, so a first run that
 * takes many minutes says what it is doing.
 */
export async function ensureKubeBinaries(log: (line: string) => void = () => {}): Promise<KubeBinaries> {
  const version = await kubernetesVersion();
  const host = new ZxHost();
  const facts = await readKubernetesFacts(host, version);
  const bundle = bundleDir(cacheRoot(), version);
  let buildSeconds = 0;
  for (const b of kubernetesBuilds({ kubernetes: version }, facts)) {
    const { stamp, built } = await ensureGoBuild(host, b, bundle, { log: (line) => log(`kube harness: ${line}`) });
    if (built) buildSeconds += stamp.seconds;
  }
  return {
    kubernetesVersion: version,
    etcdVersion: facts.etcd,
    apiserver: path.join(bundle, 'components', 'kube-apiserver'),
    kubectl: path.join(bundle, 'bin', 'kubectl'),
    etcd: path.join(bundle, 'components', 'etcd'),
    buildSeconds,
  };
}

/** The build of kube-apiserver, kubectl and etcd as an announced one-time install (see test/harness/announce.ts). */
export async function kubeInstall(): Promise<Install> {
  const version = await kubernetesVersion();
  const bundle = bundleDir(cacheRoot(), version);
  return {
    name: `kube-apiserver, kubectl and etcd (Kubernetes ${version})`,
    where: bundle,
    estimate: '20-45 min',
    // The stamps' presence only: the exact check needs the Kubernetes module (a large download on a fresh machine);
    // ensureKubeBinaries makes it, and says so if it builds after all.
    cached: () => ['kubernetes', 'etcd'].every((name) => existsSync(buildPaths(bundle, name).stamp)),
    ensure: (log) => ensureKubeBinaries(log),
  };
}

// ---------------------------------------------------------------------------------------------
// Running cluster

export interface KubeCluster {
  binaries: KubeBinaries;
  /** https://127.0.0.1:<port> */
  server: string;
  /** Kubeconfig for the admin identity (client certificate, group system:masters). */
  adminKubeconfig: string;
  /** Seconds from spawning etcd to kube-apiserver's /readyz answering ok. */
  startSeconds: number;
  /** Runs the pinned kubectl; `kubeconfig` defaults to the admin's. */
  kubectl: (args: readonly string[], opts?: { kubeconfig?: string; input?: string }) => Promise<ExecResult>;
  /**
   * A kubeconfig authenticated as ServiceAccount `name` in `namespace`, with a token from the
   * TokenRequest API (the ServiceAccount must exist).
   */
  serviceAccountKubeconfig(namespace: string, name: string): Promise<string>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

interface Pki {
  caCrt: string;
  servingCrt: string;
  servingKey: string;
  adminCrt: string;
  adminKey: string;
  saPub: string;
  saKey: string;
}

async function makePki(dir: string): Promise<Pki> {
  const p = (f: string) => path.join(dir, f);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await run('openssl', [
    'req',
    '-x509',
    ...ec,
    '-keyout',
    p('ca.key'),
    '-out',
    p('ca.crt'),
    '-days',
    '2',
    '-subj',
    '/CN=tokenize-wiki-test-ca',
  ]);
  const sign = async (name: string, subj: string, ext: string) => {
    await run('openssl', ['req', ...ec, '-keyout', p(`${name}.key`), '-out', p(`${name}.csr`), '-subj', subj]);
    await fs.writeFile(p(`${name}.ext`), ext);
    await run('openssl', [
      'x509',
      '-req',
      '-in',
      p(`${name}.csr`),
      '-CA',
      p('ca.crt'),
      '-CAkey',
      p('ca.key'),
      '-CAcreateserial',
      '-days',
      '2',
      '-out',
      p(`${name}.crt`),
      '-extfile',
      p(`${name}.ext`),
    ]);
  };
  await sign(
    'serving',
    '/CN=kube-apiserver',
    'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n',
  );
  await sign('admin', '/O=system:masters/CN=tokenize-wiki-admin', 'extendedKeyUsage=clientAuth\n');
  const sa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  await fs.writeFile(p('sa.key'), sa.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  await fs.writeFile(p('sa.pub'), sa.publicKey.export({ type: 'spki', format: 'pem' }));
  return {
    caCrt: p('ca.crt'),
    servingCrt: p('serving.crt'),
    servingKey: p('serving.key'),
    adminCrt: p('admin.crt'),
    adminKey: p('admin.key'),
    saPub: p('sa.pub'),
    saKey: p('sa.key'),
  };
}

async function writeKubeconfig(
  file: string,
  server: string,
  caCrt: string,
  user: { name: string; token?: string; crt?: string; key?: string },
): Promise<void> {
  const b64 = async (f: string) => (await fs.readFile(f)).toString('base64');
  const credentials: Record<string, string> = {};
  if (user.token) credentials.token = user.token;
  if (user.crt && user.key) {
    credentials['client-certificate-data'] = await b64(user.crt);
    credentials['client-key-data'] = await b64(user.key);
  }
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'test', cluster: { server, 'certificate-authority-data': await b64(caCrt) } }],
    users: [{ name: user.name, user: credentials }],
    contexts: [{ name: user.name, context: { cluster: 'test', user: user.name } }],
    'current-context': user.name,
  };
  await fs.writeFile(file, YAML.stringify(config), { mode: 0o600 });
}

function spawnLogged(cmd: string, args: string[], logFile: string): Promise<ChildProcess> {
  return fs.open(logFile, 'w').then((fh) => {
    const child = spawn(cmd, args, { stdio: ['ignore', fh.fd, fh.fd] });
    child.on('spawn', () => void fh.close());
    child.on('error', () => void fh.close());
    return child;
  });
}

async function tail(file: string): Promise<string> {
  const text = await fs.readFile(file, 'utf8').catch(() => '');
  return text.split('\n').slice(-15).join('\n');
}

async function waitFor(
  what: string,
  child: ChildProcess,
  logFile: string,
  timeoutMs: number,
  ok: () => Promise<boolean>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${what} exited ${child.exitCode}:\n${await tail(logFile)}`);
    if (await ok().catch(() => false)) return;
    await sleep(250);
  }
  throw new Error(`${what} not ready after ${timeoutMs / 1000}s:\n${await tail(logFile)}`);
}

function httpsGet(
  url: string,
  tls: { ca: string; cert: string; key: string },
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ...tls, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/**
 * Starts etcd and kube-apiserver on free loopback ports (building them first if needed). Call from a
 * file-level `beforeAll` with a long timeout (first run builds for several minutes) and call
 * `stop()` in `afterAll`.
 */
export async function startKube(opts: { log?: (line: string) => void } = {}): Promise<KubeCluster> {
  const binaries = await ensureKubeBinaries(opts.log);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tw-kube-'));
  const children: ChildProcess[] = [];
  const killAll = () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  };
  // If the test worker dies without afterAll, don't leave servers behind.
  process.once('exit', killAll);
  const started = Date.now();
  try {
    const pki = await makePki(dir);
    const [etcdClient, etcdPeer, apiPort] = [await freePort(), await freePort(), await freePort()];
    const etcdUrl = `http://127.0.0.1:${etcdClient}`;
    const peerUrl = `http://127.0.0.1:${etcdPeer}`;
    const etcdLog = path.join(dir, 'etcd.log');
    const etcd = await spawnLogged(
      binaries.etcd,
      [
        '--name=test',
        `--data-dir=${path.join(dir, 'etcd')}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=test=${peerUrl}`,
        '--unsafe-no-fsync', // throwaway data: durability costs time and buys nothing here
        '--log-level=warn',
      ],
      etcdLog,
    );
    children.push(etcd);
    await waitFor('etcd', etcd, etcdLog, 60_000, async () => {
      const res = await fetch(`${etcdUrl}/health`);
      return res.ok && (await res.text()).includes('"health":"true"');
    });

    const server = `https://127.0.0.1:${apiPort}`;
    const apiLog = path.join(dir, 'kube-apiserver.log');
    const apiserver = await spawnLogged(
      binaries.apiserver,
      [
        `--etcd-servers=${etcdUrl}`,
        '--bind-address=127.0.0.1',
        '--advertise-address=127.0.0.1',
        `--secure-port=${apiPort}`,
        `--cert-dir=${path.join(dir, 'apiserver-certs')}`,
        `--tls-cert-file=${pki.servingCrt}`,
        `--tls-private-key-file=${pki.servingKey}`,
        `--client-ca-file=${pki.caCrt}`,
        '--authorization-mode=RBAC',
        '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
        `--service-account-key-file=${pki.saPub}`,
        `--service-account-signing-key-file=${pki.saKey}`,
        '--service-cluster-ip-range=10.96.0.0/16',
        '--allow-privileged=true',
        '--profiling=false',
      ],
      apiLog,
    );
    children.push(apiserver);
    const tls = {
      ca: await fs.readFile(pki.caCrt, 'utf8'),
      cert: await fs.readFile(pki.adminCrt, 'utf8'),
      key: await fs.readFile(pki.adminKey, 'utf8'),
    };
    await waitFor('kube-apiserver', apiserver, apiLog, 180_000, async () => {
      const res = await httpsGet(`${server}/readyz`, tls);
      return res.status === 200 && res.body.trim() === 'ok';
    });
    const startSeconds = Math.round((Date.now() - started) / 100) / 10;

    const adminKubeconfig = path.join(dir, 'admin.kubeconfig');
    await writeKubeconfig(adminKubeconfig, server, pki.caCrt, { name: 'admin', crt: pki.adminCrt, key: pki.adminKey });

    const kubectl: KubeCluster['kubectl'] = (args, o = {}) =>
      exec(binaries.kubectl, [`--kubeconfig=${o.kubeconfig ?? adminKubeconfig}`, ...args], {
        input: o.input,
        env: { ...process.env, KUBECONFIG: '' },
      });

    return {
      binaries,
      server,
      adminKubeconfig,
      startSeconds,
      kubectl,
      async serviceAccountKubeconfig(namespace, name) {
        const r = await kubectl(['create', 'token', name, '-n', namespace, '--duration=1h']);
        if (r.code !== 0) throw new Error(`TokenRequest for ${namespace}/${name} failed: ${r.stderr.trim()}`);
        const file = path.join(dir, `sa-${namespace}-${name}.kubeconfig`);
        await writeKubeconfig(file, server, pki.caCrt, { name: `${namespace}-${name}`, token: r.stdout.trim() });
        return file;
      },
      async stop() {
        process.removeListener('exit', killAll);
        await stopChild(apiserver);
        await stopChild(etcd);
        await fs.rm(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    killAll();
    process.removeListener('exit', killAll);
    // Keep the logs of a failed start for a person to read.
    throw new Error(`${(e as Error).message}\n(kube harness files kept in ${dir})`);
  }
}
