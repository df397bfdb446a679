// The Git side of the user's path: a git server inside the cluster's network namespace (on the bridge
// address, the only address the nodes reach) serving this checkout's commit as `main`, and the user's clone of
// it on the control-plane node, where install-argocd runs. The clone gets the changes a user makes to a fork
// before pointing Argo CD at it (docs/bootstrap.md, "A Git remote Argo CD can read"), plus what this machine
// lacks, as one commit; later commits (a run file) are pushed from it like a user's.
import { spawn } from 'node:child_process';
import { readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { repoRoot } from '../harness/paths.js';
import { run, waitFor } from '../harness/proc.js';
import { NODE_REPO, type Cluster, type ClusterNode } from './cluster.js';
import { bridgeAddress, clusterNetns } from './network.js';

/** Where the user's clone lives inside the control-plane node. */
export const NODE_CLONE = '/root/tokenize-wiki';
const GIT_PORT = 9418;

export interface GitServer {
  /** The repoURL Argo CD syncs from. */
  url: string;
  /** The commit `main` points at after the e2e wiring commit. */
  head: string;
  /** The clone on the host's side of the node's root filesystem (the node sees it at NODE_CLONE). */
  cloneDir: string;
  /** Edits files of the clone with `edit`, commits them as the user and pushes to the server; returns the commit. */
  commit(message: string, edit: (dir: string) => void): Promise<string>;
}

const git = (dir: string, ...args: string[]): Promise<string> =>
  run('git', ['-C', dir, '-c', 'user.name=tokenize-wiki e2e', '-c', 'user.email=e2e@tokenize-wiki.invalid', ...args]);

/** Edits a YAML file of the clone in place, keeping its comments. */
export function editYaml(file: string, edit: (doc: ReturnType<typeof parseDocument>) => void): void {
  const doc = parseDocument(readFileSync(file, 'utf8'));
  edit(doc);
  writeFileSync(file, doc.toString());
}

/** Ray pods' CPU requests on this machine: its two cores also carry the control plane, Argo CD and the store. */
const RAY_CPU_REQUESTS: Record<string, string> = {
  '/spec/headGroupSpec/template/spec/containers/0/resources': '100m',
  '/spec/workerGroupSpecs/0/template/spec/containers/0/resources': '300m',
};

/**
 * What the e2e cluster needs beyond clusters/dev, as a fork's owner would commit it: the root app reads this
 * server; Argo CD's dex server (SSO, unused here) runs no replica because the bundle builds no dex image; the
 * Ray pods request less CPU (dev's sizes are for a 4 vCPU node; the limits, which Ray counts, stay).
 */
function e2eWiring(dir: string, url: string): void {
  editYaml(join(dir, 'apps/wiki-tokenizer/overlays/dev/ray-small.yaml'), (doc) => {
    const ops = doc.toJS() as { path: string }[];
    for (const [path, cpu] of Object.entries(RAY_CPU_REQUESTS)) {
      const i = ops.findIndex((op) => op.path === path);
      if (i < 0) throw new Error(`apps/wiki-tokenizer/overlays/dev/ray-small.yaml: no patch of ${path}`);
      doc.setIn([i, 'value', 'requests', 'cpu'], cpu);
    }
  });
  editYaml(join(dir, 'argocd/root/dev/root.yaml'), (doc) => doc.setIn(['spec', 'source', 'repoURL'], url));
  editYaml(join(dir, 'argocd/install/kustomization.yaml'), (doc) => {
    const patch = doc.createNode({
      target: { kind: 'Deployment', name: 'argocd-dex-server' },
      patch: '- op: replace\n  path: /spec/replicas\n  value: 0\n',
    });
    doc.addIn(['patches'], patch);
  });
}

/** Starts `git daemon` in the cluster namespace, serving a bare copy of HEAD as main, and clones it into the node. */
export async function serveCheckout(cluster: Cluster, node: ClusterNode, log: (line: string) => void): Promise<GitServer> {
  const base = join(cluster.dir, 'git');
  const bare = join(base, 'tokenize-wiki.git');
  const url = `git://${bridgeAddress()}:${GIT_PORT}/tokenize-wiki.git`;
  await run('git', ['init', '--quiet', '--bare', '--initial-branch=main', bare]);
  await run('git', ['-C', repoRoot, 'push', '--quiet', bare, 'HEAD:refs/heads/main']);
  // The node's root filesystem is an overlay mounted on the host: a clone written there is the node's own.
  const cloneDir = join(cluster.dir, 'nodes', node.name, 'rootfs', NODE_CLONE);
  await run('git', ['clone', '--quiet', bare, cloneDir]);
  // The clone uses the checkout's dependencies (the node has no registry to npm ci from).
  symlinkSync(join(NODE_REPO, 'node_modules'), join(cloneDir, 'node_modules'));
  // Daemonized inside the namespace: the teardown kills every process left in the run's namespaces.
  const daemon = spawn(
    'ip',
    ['netns', 'exec', clusterNetns(cluster.runId), 'git', 'daemon', '--reuseaddr', '--export-all', `--base-path=${base}`, `--listen=${bridgeAddress()}`, `--port=${GIT_PORT}`, base],
    { stdio: 'ignore', detached: true },
  );
  daemon.unref();
  const commit = async (message: string, edit: (dir: string) => void): Promise<string> => {
    edit(cloneDir);
    await git(cloneDir, 'commit', '--quiet', '-am', message);
    await git(cloneDir, 'push', '--quiet', 'origin', 'HEAD:main');
    return (await git(cloneDir, 'rev-parse', 'HEAD')).trim();
  };
  const head = await commit('e2e: the root app reads the cluster network\'s git server; no dex (no image in the bundle); Ray requests for two cores', (dir) => e2eWiring(dir, url));
  await waitFor(`git daemon on ${url}`, 30_000, async () => {
    const served = await run('ip', ['netns', 'exec', clusterNetns(cluster.runId), 'git', 'ls-remote', url, 'main']).catch(() => '');
    // The node reaches it over the bridge, as Argo CD's repo server will (the node has bash, not git).
    const reach = await node.exec(['bash', '-c', `exec 3<>/dev/tcp/${bridgeAddress()}/${GIT_PORT}`]);
    return served.startsWith(head) && reach.code === 0 ? true : undefined;
  });
  log(`e2e: ${url} serves ${head.slice(0, 12)} (this checkout's HEAD plus the e2e wiring)`);
  return { url, head, cloneDir, commit };
}
