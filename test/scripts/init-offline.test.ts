// init-control-plane --offline: on a node installed from a bundle, a missing control-plane image is named before
// kubeadm runs (on a real node kubeadm otherwise retried every image against registries it cannot reach).
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bootstrapNode } from '../../scripts/bootstrap-node.mjs';
import { initControlPlane } from '../../scripts/init-control-plane.mjs';
import { captureIO, freshHost, type FakeHost } from './fake-host.js';
import { repoRoot } from '../harness/paths.js';

const CONFIG = join(repoRoot, 'clusters/dev/kubeadm-config.yaml');
const NEEDED = [
  'registry.k8s.io/kube-apiserver:v1.36.3',
  'registry.k8s.io/etcd:3.6.8-0',
  'registry.k8s.io/pause:3.10.2',
];

async function bootstrapped(): Promise<FakeHost> {
  const host = freshHost();
  const { io } = captureIO(host);
  expect(await bootstrapNode(['--role', 'control-plane'], io)).toBe(0);
  host.actions = [];
  host.kube.push(
    {
      match: ['kubeadm', 'config', 'images', 'list', `--config=${CONFIG}`],
      result: { stdout: `${NEEDED.join('\n')}\n` },
    },
    { match: ['kubectl'], result: { exitCode: 1, stderr: 'The connection to the server was refused' } },
    { match: ['kubeadm', 'token', 'list'], result: { exitCode: 1 } },
  );
  return host;
}

async function init(host: FakeHost, ...argv: string[]) {
  const { io, captured } = captureIO(host, { SUDO_USER: 'alice' });
  return { code: await initControlPlane(['--cluster', 'dev', ...argv], io), ...captured };
}

describe('init-control-plane --offline', () => {
  it('refuses before kubeadm init, naming the images containerd lacks', async () => {
    const host = await bootstrapped();
    host.images = new Set([NEEDED[0]!]);
    const r = await init(host, '--offline');
    expect(r.code).toBe(1);
    expect(r.err.at(-1)).toContain(
      'images-present: not in containerd: registry.k8s.io/etcd:3.6.8-0, registry.k8s.io/pause:3.10.2',
    );
    expect(host.actions).toEqual([]);
  });

  it('passes when the bundle brought every image', async () => {
    const host = await bootstrapped();
    host.images = new Set(NEEDED);
    const r = await init(host, '--offline', '--dry-run');
    expect(r.code).toBe(0);
    expect(r.err.join('\n')).toContain(
      `preflight images-present: ok, ${NEEDED.length} images kubeadm needs are in containerd`,
    );
  });

  it('is off by default: online, kubeadm pulls what it needs', async () => {
    const host = await bootstrapped();
    const r = await init(host, '--dry-run');
    expect(r.code).toBe(0);
    expect(r.err.join('\n')).not.toContain('images-present');
  });
});
