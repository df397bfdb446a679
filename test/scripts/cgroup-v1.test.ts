// --allow-cgroup-v1 of init-control-plane and join-worker: explicit, off by default, and exactly two changes to
// what kubeadm gets (kubelet failCgroupV1: false in the config; its SystemVerification preflight skipped).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { bootstrapNode } from '../../scripts/bootstrap-node.mjs';
import { initControlPlane } from '../../scripts/init-control-plane.mjs';
import { joinWorker } from '../../scripts/join-worker.mjs';
import { CGROUP_V1_CONFIG, withCgroupV1Allowed } from '../../scripts/lib/kubeadm-config.js';
import { captureIO, freshHost, planCommands, plannedSteps, type FakeHost } from './fake-host.js';
import { repoRoot } from '../harness/paths.js';

const HASH = `sha256:${'0123456789abcdef'.repeat(4)}`;
const JOIN = `kubeadm join 10.0.0.10:6443 --token abcdef.0123456789abcdef --discovery-token-ca-cert-hash ${HASH}`;

async function bootstrapped(name: string): Promise<FakeHost> {
  const host = freshHost();
  host.files.set('/proc/sys/kernel/hostname', `${name}\n`);
  host.cgroupFs = 'tmpfs';
  const { io } = captureIO(host);
  expect(await bootstrapNode(['--role', 'control-plane', '--allow-cgroup-v1'], io)).toBe(0);
  host.actions = [];
  host.kube.push({ match: ['kubectl'], result: { exitCode: 1, stderr: 'The connection to the server was refused' } });
  host.kube.push({ match: ['kubeadm', 'token', 'list'], result: { exitCode: 1 } });
  return host;
}

describe('withCgroupV1Allowed', () => {
  it("adds failCgroupV1: false to the cluster's KubeletConfiguration and changes nothing else", () => {
    const file = join(repoRoot, 'clusters/dev/kubeadm-config.yaml');
    const text = readFileSync(file, 'utf8');
    const out = withCgroupV1Allowed(text);
    const before = parseAllDocuments(text).map((d) => d.toJS() as Record<string, unknown>);
    const after = parseAllDocuments(out).map((d) => d.toJS() as Record<string, unknown>);
    expect(after).toEqual(before.map((d) => (d.kind === 'KubeletConfiguration' ? { ...d, failCgroupV1: false } : d)));
    expect(out).toContain('# One node runs everything'); // comments kept
  });

  it('adds a KubeletConfiguration when the config has none', () => {
    const out = withCgroupV1Allowed('apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n');
    expect(parseAllDocuments(out).map((d) => d.toJS())).toEqual([
      { apiVersion: 'kubeadm.k8s.io/v1beta4', kind: 'ClusterConfiguration' },
      { apiVersion: 'kubelet.config.k8s.io/v1beta1', kind: 'KubeletConfiguration', failCgroupV1: false },
    ]);
  });
});

describe('init-control-plane --allow-cgroup-v1', () => {
  it('writes the overriding config and gives it to kubeadm init with SystemVerification skipped', async () => {
    const host = await bootstrapped('cp-1');
    const { io, captured } = captureIO(host, { SUDO_USER: 'alice' });
    expect(await initControlPlane(['--cluster', 'dev', '--allow-cgroup-v1', '--dry-run'], io)).toBe(0);
    expect(plannedSteps(captured.out).slice(0, 2)).toEqual(['kubeadm-config-cgroup-v1', 'kubeadm-init']);
    const cmds = planCommands(captured.out);
    expect(cmds).toContain(`kubeadm init --config=${CGROUP_V1_CONFIG} --ignore-preflight-errors=SystemVerification`);
    expect(cmds).toContain('failCgroupV1: false');
  });

  it('is off by default: the config in git goes to kubeadm as it is', async () => {
    const host = await bootstrapped('cp-1');
    const { io, captured } = captureIO(host, { SUDO_USER: 'alice' });
    expect(await initControlPlane(['--cluster', 'dev', '--dry-run'], io)).toBe(0);
    expect(planCommands(captured.out)).toContain(
      `kubeadm init --config=${join(repoRoot, 'clusters/dev/kubeadm-config.yaml')}`,
    );
    expect(captured.out.join('\n')).not.toMatch(/failCgroupV1|SystemVerification/);
  });
});

describe('join-worker --allow-cgroup-v1', () => {
  it('skips SystemVerification only when asked', async () => {
    const host = await bootstrapped('worker-1');
    const on = captureIO(host);
    expect(await joinWorker(['--join-command', JOIN, '--allow-cgroup-v1', '--dry-run'], on.io)).toBe(0);
    expect(planCommands(on.captured.out)).toEqual([`${JOIN} --ignore-preflight-errors=SystemVerification`]);
    const off = captureIO(host);
    expect(await joinWorker(['--join-command', JOIN, '--dry-run'], off.io)).toBe(0);
    expect(planCommands(off.captured.out)).toEqual([JOIN]);
  });

  it('on a machine without DMI tables, refuses a join whose machine-id a node already has', async () => {
    const host = await bootstrapped('worker-2');
    host.files.delete('/sys/class/dmi/id/product_uuid');
    host.files.set('/etc/machine-id', '3f1c0e8a5b7d4e2f9a6c1b0d8e7f6a5b\n');
    const nodes = {
      items: [
        {
          metadata: { name: 'cp-1' },
          status: { nodeInfo: { systemUUID: '', machineID: '3f1c0e8a5b7d4e2f9a6c1b0d8e7f6a5b' } },
        },
      ],
    };
    host.kube.unshift(
      { match: ['ssh', 'cat'], result: { stdout: `${JOIN}\n` } },
      { match: ['ssh', 'nodes'], result: { stdout: JSON.stringify(nodes) } },
    );
    const { io, captured } = captureIO(host, { SUDO_USER: 'alice' });
    expect(await joinWorker(['--ssh', 'alice@cp-1'], io)).toBe(1);
    expect(captured.err.at(-1)).toContain(
      'unique-in-cluster: node cp-1 already has this hostname (worker-2) or machine-id; cloned VM?',
    );
    expect(host.actions).toEqual([]);
  });
});
