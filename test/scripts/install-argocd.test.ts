import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { installArgocd } from '../../scripts/install-argocd.mjs';
import { captureIO, FakeHost, planCommands, plannedSteps } from './fake-host.js';
import { repoRoot } from '../harness/paths.js';

const { argocd } = parse(readFileSync(join(repoRoot, 'versions.yaml'), 'utf8')) as { argocd: string };
const NODES = JSON.stringify({
  items: [{ metadata: { name: 'cp-1' }, status: { conditions: [{ type: 'Ready', status: 'True' }] } }],
});
const READY = JSON.stringify({
  items: [
    {
      kind: 'Deployment',
      metadata: { name: 'argocd-server' },
      spec: { replicas: 1 },
      status: { availableReplicas: 1 },
    },
    {
      kind: 'StatefulSet',
      metadata: { name: 'argocd-application-controller' },
      spec: { replicas: 1 },
      status: { readyReplicas: 1 },
    },
  ],
});

/** The root app as argocd/root/prod/root.yaml defines it (the one place that names repository and revision). */
const PROD_SOURCE = (
  parse(readFileSync(join(repoRoot, 'argocd/root/prod/root.yaml'), 'utf8')) as {
    spec: { source: Record<string, string> };
  }
).spec.source;
const liveRoot = (source: Record<string, string>) => ({
  stdout: JSON.stringify({ kind: 'Application', metadata: { name: 'root' }, spec: { source } }),
});

/** A cluster with its pod network up and, optionally, parts of Argo CD. */
function clusterHost(opts: { image?: string; ready?: boolean; root?: Record<string, string> } = {}): FakeHost {
  const host = new FakeHost();
  host.uidValue = 1000; // no root needed
  host.kube = [
    { match: ['kubectl', 'version', '--client'], result: { stdout: 'Client Version: v1.36.3\n' } },
    { match: ['kubectl', '--raw=/readyz'], result: { stdout: 'ok' } },
    { match: ['kubectl', 'get', 'nodes'], result: { stdout: NODES } },
    {
      match: ['kubectl', 'deployment', 'argocd-server'],
      result: opts.image ? { stdout: opts.image } : { exitCode: 1 },
    },
    {
      match: ['kubectl', 'deployments,statefulsets'],
      result: opts.ready ? { stdout: READY } : { stdout: '{"items":[]}' },
    },
    {
      match: ['kubectl', 'applications.argoproj.io', 'root'],
      result: opts.root ? liveRoot(opts.root) : { exitCode: 1 },
    },
  ];
  return host;
}

async function run(host: FakeHost, ...argv: string[]) {
  const { io, captured } = captureIO(host);
  const code = await installArgocd(argv, io);
  return { code, ...captured };
}

describe('install-argocd', () => {
  it('plans install (server-side), wait, root app for prod, then says how to open the UI', async () => {
    const host = clusterHost();
    const r = await run(host, '--cluster', 'prod', '--dry-run');
    expect(r.code).toBe(0);
    expect(plannedSteps(r.out)).toEqual(['argocd-installed', 'argocd-ready', 'root-app']);
    expect(planCommands(r.out)).toEqual([
      `kubectl apply --server-side --force-conflicts -k ${repoRoot}/argocd/install`,
      'kubectl -n argocd wait --for=condition=Available deployment --all --timeout=600s',
      'kubectl -n argocd rollout status statefulset/argocd-application-controller --timeout=600s',
      `kubectl apply -k ${repoRoot}/argocd/root/prod`,
    ]);
    expect(r.out).toContain(
      "#   kubectl -n argocd get secret argocd-initial-admin-secret -o jsonpath='{.data.password}' | base64 -d",
    );
    expect(r.out).toContain(
      '# Open the UI: kubectl -n argocd port-forward svc/argocd-server 8080:443, then https://localhost:8080 (user admin)',
    );
    expect(host.unknownProbes).toEqual([]);
  });

  it('passes --kubeconfig to every kubectl command', async () => {
    const r = await run(clusterHost(), '--cluster', 'dev', '--kubeconfig', '/home/alice/dev.conf', '--dry-run');
    expect(planCommands(r.out).every((c) => c.startsWith('kubectl --kubeconfig=/home/alice/dev.conf '))).toBe(true);
    expect(planCommands(r.out).at(-1)).toBe(
      `kubectl --kubeconfig=/home/alice/dev.conf apply -k ${repoRoot}/argocd/root/dev`,
    );
  });

  it('does nothing when Argo CD runs the pinned version, is ready and has the root app', async () => {
    const host = clusterHost({ image: `quay.io/argoproj/argocd:${argocd}`, ready: true, root: PROD_SOURCE });
    const r = await run(host, '--cluster', 'prod');
    expect(r.code).toBe(0);
    expect(host.actions).toEqual([]);
  });

  it('re-applies only the install when Argo CD runs another version', async () => {
    const host = clusterHost({ image: 'quay.io/argoproj/argocd:v3.0.0', ready: true, root: PROD_SOURCE });
    const r = await run(host, '--cluster', 'prod', '--dry-run');
    expect(plannedSteps(r.out)).toEqual(['argocd-installed']);
  });

  it.each([
    ['repoURL', 'https://github.com/someone-else/tokenize-wiki.git'],
    ['targetRevision', 'main'],
  ])('re-applies the root app when its %s in the cluster differs from Git', async (key, value) => {
    const host = clusterHost({
      image: `quay.io/argoproj/argocd:${argocd}`,
      ready: true,
      root: { ...PROD_SOURCE, [key]: value },
    });
    const r = await run(host, '--cluster', 'prod', '--dry-run');
    expect(plannedSteps(r.out)).toEqual(['root-app']);
    expect(planCommands(r.out)).toEqual([`kubectl apply -k ${repoRoot}/argocd/root/prod`]);
  });

  it('refuses when the API server is not reachable, before applying anything', async () => {
    const host = clusterHost();
    host.kube[1] = {
      match: ['kubectl', '--raw=/readyz'],
      result: { exitCode: 1, stderr: 'The connection to the server 10.0.0.10:6443 was refused' },
    };
    const r = await run(host, '--cluster', 'prod');
    expect(r.code).toBe(1);
    expect(r.err.at(-1)).toBe(
      'install-argocd: error: preflight failed, nothing was changed: api-server: kubectl cannot reach a ready API server: The connection to the server 10.0.0.10:6443 was refused',
    );
    expect(host.actions).toEqual([]);
  });

  it('names the known clusters for a bad --cluster', async () => {
    const r = await run(clusterHost(), '--cluster', 'qa');
    expect(r.code).toBe(2);
    expect(r.err.at(-1)).toBe(
      'install-argocd: usage error: --cluster qa: no argocd/root/qa/kustomization.yaml (known: dev, dev-3, prod)',
    );
  });
});
