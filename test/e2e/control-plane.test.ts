// The user's first two commands on a real (container) node, air-gapped: bootstrap-node --bundle, then
// init-control-plane --cluster dev. Needs a complete bundle (scripts/build-bundle.mts; TW_E2E_BUNDLE names
// another folder); without one the suite says why it did not run.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { readNodeBundle } from '../../scripts/lib/bundle/node-bundle.js';
import { cacheRoot, repoRoot } from '../harness/paths.js';
import { NODE_BUNDLE, nodeScript, startCluster, type Cluster, type ClusterNode } from './cluster.js';

const log = (line: string): void => void process.stderr.write(`${line}\n`);
const kubernetes = (parse(readFileSync(join(repoRoot, 'versions.yaml'), 'utf8')) as { kubernetes: string }).kubernetes;
const bundleDir = process.env.TW_E2E_BUNDLE || join(cacheRoot(), 'bundle', kubernetes);

function bundleProblem(): string | undefined {
  try {
    readNodeBundle(bundleDir);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

/** Images kubeadm init needs (asked of the bundle's kubeadm) that the bundle does not hold. */
function imagesMissing(): string[] {
  const wanted = execFileSync(join(bundleDir, 'bin', 'kubeadm'), ['config', 'images', 'list', `--config=${join(repoRoot, 'clusters/dev/kubeadm-config.yaml')}`], {
    encoding: 'utf8',
  }).split('\n').filter(Boolean);
  const have = new Set(readNodeBundle(bundleDir).images.map((i) => i.name));
  return wanted.filter((w) => !have.has(w));
}

const missing = bundleProblem();
if (missing) log(`e2e: control-plane suite NOT RUN: ${missing}`);
const missingImages = missing ? [] : imagesMissing();
if (missingImages.length) log(`e2e: init-control-plane test NOT RUN: the bundle lacks ${missingImages.join(', ')}`);

describe.skipIf(missing !== undefined)('a dev control plane on a node container, from the bundle', () => {
  let cluster: Cluster;
  let node: ClusterNode;
  const timings: Record<string, number> = {};

  beforeAll(async () => {
    cluster = await startCluster({ nodes: ['cp-1'], bundleDir, log });
    node = cluster.nodes[0]!;
  });

  afterAll(() => {
    log(`e2e: timings ${JSON.stringify({ ...cluster?.timings, ...timings })}`);
    cluster?.stop();
  });

  async function timed(name: string, script: string, args: string[]) {
    const t0 = Date.now();
    const r = await nodeScript(node, script, args);
    timings[name] = Math.round((Date.now() - t0) / 100) / 10;
    if (r.code !== 0) log(`e2e: ${script} exited ${r.code}:\n${r.stderr.slice(-6000)}`);
    return r;
  }

  it('bootstrap-node --bundle installs containerd, kubelet and the images without any network', async () => {
    const r = await timed('bootstrapNodeSeconds', 'bootstrap-node', ['--role', 'control-plane', '--bundle', NODE_BUNDLE, '--allow-cgroup-v1']);
    expect(r.code).toBe(0);
    expect((await node.exec(['systemctl', 'is-active', 'containerd'])).stdout.trim()).toBe('active');
    const images = (await node.exec(['ctr', '-n', 'k8s.io', 'images', 'ls', '-q'])).stdout;
    expect(images).toContain(`registry.k8s.io/kube-apiserver:v${kubernetes}`);
    // A second run finds every step done.
    const again = await nodeScript(node, 'bootstrap-node', ['--role', 'control-plane', '--bundle', NODE_BUNDLE, '--allow-cgroup-v1']);
    expect(again.code).toBe(0);
    expect(again.stderr).not.toContain(': applying');
  });

  it.skipIf(missingImages.length > 0)('init-control-plane --cluster dev brings up the API server on the node', async () => {
    const r = await timed('initControlPlaneSeconds', 'init-control-plane', ['--cluster', 'dev', '--allow-cgroup-v1', '--offline']);
    const readyz = await node.exec(['kubectl', '--kubeconfig=/etc/kubernetes/admin.conf', 'get', '--raw', '/readyz']);
    expect(readyz.stdout.trim()).toBe('ok');
    const nodes = await node.exec(['kubectl', '--kubeconfig=/etc/kubernetes/admin.conf', 'get', 'nodes', '-o', 'name']);
    expect(nodes.stdout.trim()).toBe('node/cp-1');
    expect(r.code).toBe(0);
  });
});
