import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { bootstrapNode } from '../../scripts/bootstrap-node.mjs';
import { FLANNEL_NETWORK, initControlPlane } from '../../scripts/init-control-plane.mjs';
import { readKubeadmConfig } from '../../scripts/lib/kubeadm-config.js';
import { captureIO, freshHost, planCommands, plannedSteps, type FakeHost } from './fake-host.js';
import { repoRoot } from '../harness/paths.js';

const versions = parse(readFileSync(join(repoRoot, 'versions.yaml'), 'utf8')) as { kubernetes: string };
const JOIN =
  'kubeadm join 10.0.0.10:6443 --token abcdef.0123456789abcdef --discovery-token-ca-cert-hash sha256:' + 'a'.repeat(64);

/** A control-plane VM after bootstrap-node ran, before kubeadm init; no API server answers yet. */
async function bootstrappedHost(): Promise<FakeHost> {
  const host = freshHost();
  const { io } = captureIO(host);
  expect(await bootstrapNode(['--role', 'control-plane'], io)).toBe(0);
  host.actions = [];
  host.kube.push({ match: ['kubectl'], result: { exitCode: 1, stderr: 'The connection to the server was refused' } });
  host.kube.push({ match: ['kubeadm', 'token', 'list'], result: { exitCode: 1 } });
  return host;
}

/** The same host once init-control-plane completed. */
function initialized(host: FakeHost): FakeHost {
  host.files.set('/etc/kubernetes/admin.conf', 'apiVersion: v1\nkind: Config\n');
  host.files.set('/etc/kubernetes/kubelet.conf', 'apiVersion: v1\nkind: Config\n');
  host.files.set('/home/alice/.kube/config', 'apiVersion: v1\nkind: Config\n');
  host.files.set('/etc/kubernetes/join-command', `${JOIN}\n`);
  host.listening.push(6443, 2379, 2380, 10250, 10257, 10259);
  host.kube = [
    { match: ['kubectl', 'daemonset', 'kube-flannel-ds'], result: { stdout: 'daemonset.apps/kube-flannel-ds\n' } },
    {
      match: ['kubectl', 'node', 'cp-1', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'],
      result: { stdout: 'True' },
    },
    { match: ['kubectl', 'node', 'cp-1', 'jsonpath={.spec.taints[*].key}'], result: { stdout: '' } },
    // The cluster lists the live tokens: abcdef... and any a test's `kubeadm token create` made.
    {
      match: ['kubeadm', 'token', 'list'],
      result: () => ({
        stdout: `TOKEN                     TTL  EXPIRES\nabcdef.0123456789abcdef   23h  2026-11-29T12:00:00Z\n${host.onExec ? 'ghijkl.0123456789abcdef   24h  2026-11-29T13:00:00Z\n' : ''}`,
      }),
    },
  ];
  return host;
}

async function run(
  host: FakeHost,
  argv: string[],
  env: Record<string, string> = { SUDO_USER: 'alice' },
  root = repoRoot,
) {
  const { io, captured } = captureIO(host, env);
  const code = await initControlPlane(argv, { ...io, repoRoot: root });
  return { code, ...captured };
}

describe('kubeadm configs in clusters/', () => {
  const clusters = readdirSync(join(repoRoot, 'clusters')).filter((d) => {
    try {
      return readFileSync(join(repoRoot, 'clusters', d, 'kubeadm-config.yaml')).length > 0;
    } catch {
      return false;
    }
  });

  it('exist for prod, dev and dev-3', () => {
    expect(clusters.sort()).toEqual(['dev', 'dev-3', 'prod']);
  });

  it.each(['prod', 'dev', 'dev-3'])(
    "%s pins the Kubernetes version of versions.yaml and Flannel's pod network",
    (cluster) => {
      const config = readKubeadmConfig(join(repoRoot, 'clusters', cluster, 'kubeadm-config.yaml'));
      expect(config.kubernetesVersion).toBe(`v${versions.kubernetes}`);
      expect(config.apiVersion).toBe('kubeadm.k8s.io/v1beta4');
      expect(config.clusterName).toBe(cluster);
      expect(config.podSubnet).toBe(FLANNEL_NETWORK);
      const netConf = parse(readFileSync(join(repoRoot, 'infrastructure/flannel/net-conf.yaml'), 'utf8')) as {
        data: Record<string, string>;
      };
      expect(JSON.parse(netConf.data['net-conf.json'] ?? '{}').Network).toBe(config.podSubnet);
      expect(config.singleNode).toBe(cluster === 'dev');
    },
  );

  it.each(['dev', 'dev-3'])(
    '%s leaves nf_conntrack_max to the host, so kube-proxy runs on a node in a container',
    (cluster) => {
      const docs = parseAllDocuments(readFileSync(join(repoRoot, 'clusters', cluster, 'kubeadm-config.yaml'), 'utf8'));
      const proxy = docs
        .map((d) => d.toJS() as { kind?: string; conntrack?: { maxPerCore?: number } })
        .find((d) => d.kind === 'KubeProxyConfiguration');
      expect(proxy?.conntrack?.maxPerCore).toBe(0);
    },
  );
});

describe('init-control-plane --dry-run', () => {
  it('plans kubeadm init from the prod config, kubeconfig for $SUDO_USER, Flannel, the join file', async () => {
    const host = await bootstrappedHost();
    const r = await run(host, ['--cluster', 'prod', '--dry-run']);
    expect(r.code).toBe(0);
    expect(host.actions).toEqual([]);
    expect(plannedSteps(r.out)).toEqual([
      'kubeadm-init',
      'user-kubeconfig',
      'pod-network',
      'node-ready',
      'join-command',
    ]);
    const kc = '--kubeconfig=/etc/kubernetes/admin.conf';
    expect(planCommands(r.out)).toEqual([
      `kubeadm init --config=${repoRoot}/clusters/prod/kubeadm-config.yaml`,
      'install -d -m 0700 -o 1000 -g 1000 /home/alice/.kube',
      'install -m 0600 -o 1000 -g 1000 /etc/kubernetes/admin.conf /home/alice/.kube/config',
      `kubectl ${kc} apply -k ${repoRoot}/infrastructure/flannel`,
      `kubectl ${kc} -n kube-flannel rollout status daemonset/kube-flannel-ds --timeout=300s`,
      `kubectl ${kc} wait --for=condition=Ready node/cp-1 --timeout=300s`,
      'install -m 0600 /dev/null /etc/kubernetes/join-command',
      `kubeadm token create --print-join-command ${kc} > /etc/kubernetes/join-command`,
    ]);
  });

  it('matches the reviewed prod plan (versions and checkout path normalized)', async () => {
    const r = await run(await bootstrappedHost(), ['--cluster', 'prod', '--dry-run']);
    const text = r.out.join('\n').replaceAll(repoRoot, '<repo>').replaceAll(`v${versions.kubernetes}`, 'v<kubernetes>');
    await expect(`${text}\n`).toMatchFileSnapshot('plans/init-control-plane-prod.plan.txt');
  });

  it('removes the control-plane taint on the one-node dev cluster', async () => {
    const r = await run(await bootstrappedHost(), ['--cluster', 'dev', '--dry-run']);
    expect(r.code).toBe(0);
    expect(plannedSteps(r.out)).toEqual([
      'kubeadm-init',
      'user-kubeconfig',
      'pod-network',
      'node-ready',
      'control-plane-untainted',
      'join-command',
    ]);
    expect(r.out).toContain(
      'kubectl --kubeconfig=/etc/kubernetes/admin.conf taint nodes cp-1 node-role.kubernetes.io/control-plane:NoSchedule-',
    );
    expect(r.out).toContain(`kubeadm init --config=${repoRoot}/clusters/dev/kubeadm-config.yaml`);
  });

  it('writes the kubeconfig for root when not run through sudo', async () => {
    const r = await run(await bootstrappedHost(), ['--cluster', 'prod', '--dry-run'], {});
    expect(r.out).toContain('install -m 0600 -o 0 -g 0 /etc/kubernetes/admin.conf /root/.kube/config');
  });

  it('on a completed control plane plans nothing; a lost join file is the only step left', async () => {
    const host = initialized(await bootstrappedHost());
    const done = await run(host, ['--cluster', 'prod', '--dry-run']);
    expect(done.code).toBe(0);
    expect(plannedSteps(done.out)).toEqual([]);
    host.files.delete('/etc/kubernetes/join-command');
    const r = await run(host, ['--cluster', 'prod', '--dry-run']);
    expect(plannedSteps(r.out)).toEqual(['join-command']);
    expect(host.unknownProbes).toEqual([]);
  });

  it('replaces a join command whose token has expired', async () => {
    const host = initialized(await bootstrappedHost());
    const fresh = JOIN.replace('abcdef.0123456789abcdef', 'ghijkl.0123456789abcdef');
    host.files.set('/etc/kubernetes/join-command', JOIN.replace('abcdef.0123456789abcdef', 'zzzzzz.0123456789abcdef'));
    host.onExec = (argv) => (argv[1] === 'token' && argv[2] === 'create' ? `${fresh}\n` : undefined);
    const r = await run(host, ['--cluster', 'prod']);
    expect(r.code).toBe(0);
    expect(host.files.get('/etc/kubernetes/join-command')).toBe(`${fresh}\n`);
    expect(host.actions).toEqual([
      'install -m 0600 /dev/null /etc/kubernetes/join-command',
      'kubeadm token create --print-join-command --kubeconfig=/etc/kubernetes/admin.conf > /etc/kubernetes/join-command',
    ]);
  });
});

describe('init-control-plane refusals', () => {
  it('refuses a kubeadm config whose version differs from versions.yaml', async () => {
    const repo = mkdtempSync(join(tmpdir(), 'tw-repo-'));
    cpSync(join(repoRoot, 'versions.yaml'), join(repo, 'versions.yaml'));
    mkdirSync(join(repo, 'clusters', 'lab'), { recursive: true });
    const config = readFileSync(join(repoRoot, 'clusters/prod/kubeadm-config.yaml'), 'utf8')
      .replace(`kubernetesVersion: v${versions.kubernetes}`, 'kubernetesVersion: v1.30.0')
      .replace('clusterName: prod', 'clusterName: lab');
    writeFileSync(join(repo, 'clusters', 'lab', 'kubeadm-config.yaml'), config);
    const host = await bootstrappedHost();
    const r = await run(host, ['--cluster', 'lab'], {}, repo);
    expect(r.code).toBe(2);
    expect(r.err.at(-1)).toBe(
      `init-control-plane: usage error: clusters/lab/kubeadm-config.yaml: kubernetesVersion v1.30.0 differs from versions.yaml kubernetes ${versions.kubernetes}`,
    );
    expect(host.actions).toEqual([]);
  });

  it('names the known clusters for a bad --cluster', async () => {
    const r = await run(await bootstrappedHost(), ['--cluster', 'staging']);
    expect(r.code).toBe(2);
    expect(r.err.at(-1)).toBe(
      'init-control-plane: usage error: --cluster staging: no clusters/staging/kubeadm-config.yaml (known: dev, dev-3, prod)',
    );
  });

  it('refuses a node that bootstrap-node has not prepared', async () => {
    const host = freshHost();
    const r = await run(host, ['--cluster', 'prod']);
    expect(r.code).toBe(1);
    expect(r.err.at(-1)).toContain('node-bootstrapped: kubeadm not installed, want');
    expect(host.actions).toEqual([]);
  });

  it('refuses without root', async () => {
    const host = await bootstrappedHost();
    host.uidValue = 1000;
    const r = await run(host, ['--cluster', 'prod']);
    expect(r.code).toBe(1);
    expect(r.err.at(-1)).toMatch(/^init-control-plane: error: must run as root/);
  });
});
