// The Git side of the user's path: a git server inside the cluster's network namespace (on the bridge
// address, the only address the nodes reach) serving this checkout's commit as `main`, and the user's clone of
// it on the control-plane node, where install-argocd runs. The clone gets the changes a user makes to a fork
// before pointing Argo CD at it (docs/bootstrap.md, "A Git remote Argo CD can read"), plus what this machine
// lacks, as one commit; later commits (a run file) are pushed from it like a user's. Beside it, an HTTP server
// holding a synthetic dump, standing in for the dump mirror the nodes cannot reach.
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
  /**
   * Edits files of the clone with `edit` (which returns the paths of files it added, if any), commits them as the
   * user and pushes to the server; returns the commit.
   */
  commit(message: string, edit: (dir: string) => readonly string[] | void): Promise<string>;
}

const git = (dir: string, ...args: string[]): Promise<string> =>
  run('git', ['-C', dir, '-c', 'user.name=tokenize-wiki e2e', '-c', 'user.email=e2e@tokenize-wiki.invalid', ...args]);

/** Edits a YAML file of the clone in place, keeping its comments. */
export function editYaml(file: string, edit: (doc: ReturnType<typeof parseDocument>) => void): void {
  const doc = parseDocument(readFileSync(file, 'utf8'));
  edit(doc);
  writeFileSync(file, doc.toString());
}

/**
 * CPU requests on this machine: its two cores (1800m allocatable) also carry the control plane (750m), CoreDNS,
 * Flannel and Argo CD; with dev's requests the Ray worker stayed Pending (Insufficient cpu).
 */
const RAY_CPU_REQUESTS: Record<string, string> = {
  '/spec/headGroupSpec/template/spec/containers/0/resources': '50m',
  '/spec/workerGroupSpecs/0/template/spec/containers/0/resources': '100m',
};
const SMALL_CPU = '50m';

/**
 * What the e2e cluster needs beyond clusters/dev (or dev-3: `rootOf` names the cluster whose root app is set), as a
 * fork's owner would commit it: the root app reads this server; Argo CD's dex server (SSO, unused here) runs no replica because the bundle builds no dex image; the
 * Ray pods, the object store and the stage-dump Job request less CPU (dev's sizes are for a 4 vCPU node; the limits, which Ray
 * counts, stay).
 */
export function e2eWiring(dir: string, url: string, dumpUrl: string, rootOf = 'dev'): void {
  // dev stages its run's dump from dumps.wikimedia.org, out of reach here: from the synthetic one instead.
  editYaml(join(dir, 'apps/wiki-tokenizer/overlays/dev/kustomization.yaml'), (doc) => {
    const generators = doc.get('configMapGenerator') as { items: { get(k: string): unknown }[] } | undefined;
    const stage = generators?.items.find((g) => g.get('name') === 'stage-dump') as
      { get(k: string): { items: { value: string }[] } } | undefined;
    const from = stage?.get('literals').items.find((l) => String(l.value).startsWith('DUMP_FROM='));
    if (!from) throw new Error('apps/wiki-tokenizer/overlays/dev/kustomization.yaml: no stage-dump literal DUMP_FROM');
    from.value = `DUMP_FROM=${dumpUrl}`;
  });
  editYaml(join(dir, 'apps/wiki-tokenizer/overlays/dev/ray-small.yaml'), (doc) => {
    const ops = doc.toJS() as { path: string }[];
    for (const [path, cpu] of Object.entries(RAY_CPU_REQUESTS)) {
      const i = ops.findIndex((op) => op.path === path);
      if (i < 0) throw new Error(`apps/wiki-tokenizer/overlays/dev/ray-small.yaml: no patch of ${path}`);
      doc.setIn([i, 'value', 'requests', 'cpu'], cpu);
    }
    // The head's autoscaler sidecar (base: 200m).
    doc.add(
      doc.createNode({ op: 'replace', path: '/spec/autoscalerOptions/resources/requests/cpu', value: SMALL_CPU }),
    );
  });
  const stage = join(dir, 'apps/wiki-tokenizer/components/stage-dump/job.yaml');
  const job = readFileSync(stage, 'utf8');
  if (!job.includes('cpu: 200m') || !job.includes('cpu: 100m'))
    throw new Error(`${stage}: no cpu requests of 100m and 200m to lower`);
  writeFileSync(stage, job.replaceAll(/cpu: [12]00m/g, `cpu: ${SMALL_CPU}`));
  // The object store: dev's one pod, and dev-3's three (one per node, the control plane's included).
  for (const [file, cpu] of [
    ['infrastructure/object-store-single-node/kustomization.yaml', '200m'],
    ['infrastructure/object-store/statefulset.yaml', '500m'],
  ] as const) {
    const store = join(dir, file);
    const text = readFileSync(store, 'utf8');
    if (!text.includes(`cpu: ${cpu}`)) throw new Error(`${store}: no cpu: ${cpu} request to lower`);
    writeFileSync(store, text.replace(`cpu: ${cpu}`, `cpu: ${SMALL_CPU}`));
  }
  editYaml(join(dir, 'argocd/root', rootOf, 'root.yaml'), (doc) => doc.setIn(['spec', 'source', 'repoURL'], url));
  editYaml(join(dir, 'argocd/install/kustomization.yaml'), (doc) => {
    const patch = doc.createNode({
      target: { kind: 'Deployment', name: 'argocd-dex-server' },
      patch: '- op: replace\n  path: /spec/replicas\n  value: 0\n',
    });
    doc.addIn(['patches'], patch);
  });
}

/** dev's run reads simplewiki of 2026-11-22 (apps/wiki-tokenizer/overlays/dev/runs/): a synthetic dump of that name. */
const DUMP_PATH = 'other/cirrus_search_index/20261122/index_name=simplewiki_content/';
const HTTP_PORT = 8080;

/** The synthetic dump's folder on the host (what the dump server serves, and what a local run reads). */
export const dumpFolder = (cluster: Cluster): string => join(cluster.dir, 'dumps', DUMP_PATH);

/** The same wiki and date in the legacy layout: one `.json.gz` file, as Wikimedia published until January 2026. */
const LEGACY_PATH = 'other/cirrussearch/20261122/simplewiki-20261122-cirrussearch-content.json.gz';

/** The legacy dump file on the host (what a local run reads). */
export const legacyDumpFile = (cluster: Cluster): string => join(cluster.dir, 'dumps', LEGACY_PATH);

/** A synthetic dump of `docs` docs in the legacy layout, beside the current one on the running dump server; its URL. */
export async function serveLegacyDump(cluster: Cluster, docs: number, log: (line: string) => void): Promise<string> {
  await run(process.execPath, [
    join(repoRoot, 'bin/tokenize-wiki.js'),
    'synth',
    '--docs',
    String(docs),
    '--wiki',
    'simplewiki',
    '--out',
    legacyDumpFile(cluster),
  ]);
  const url = `http://${bridgeAddress()}:${HTTP_PORT}/${LEGACY_PATH}`;
  log(`e2e: ${url} serves a synthetic dump of ${docs} docs in the legacy layout`);
  return url;
}

/**
 * A small synthetic dump in the current layout (parts and _SUCCESS) on an HTTP server in the cluster
 * namespace, with a directory listing as dump mirrors serve it; returns the folder's URL.
 */
export async function serveDump(cluster: Cluster, docs: number, log: (line: string) => void): Promise<string> {
  const root = join(cluster.dir, 'dumps');
  await run(process.execPath, [
    join(repoRoot, 'bin/tokenize-wiki.js'),
    'synth',
    '--docs',
    String(docs),
    '--parts',
    '2',
    '--wiki',
    'simplewiki',
    '--out',
    dumpFolder(cluster),
  ]);
  // The stage command reads with Range requests, which Python's http.server ignores: the suite's dump server.
  const server = spawn(
    'ip',
    [
      'netns',
      'exec',
      clusterNetns(cluster.runId),
      process.execPath,
      '--import',
      'tsx',
      'test/e2e/serve-dump.ts',
      root,
      bridgeAddress(),
      String(HTTP_PORT),
    ],
    {
      cwd: repoRoot,
      stdio: 'ignore',
      detached: true,
    },
  );
  server.unref();
  const url = `http://${bridgeAddress()}:${HTTP_PORT}/${DUMP_PATH}`;
  await waitFor(`HTTP server on ${url}`, 30_000, async () => {
    const r = await run('ip', [
      'netns',
      'exec',
      clusterNetns(cluster.runId),
      'python3',
      '-c',
      `import urllib.request; urllib.request.urlopen(${JSON.stringify(url)}, timeout=2)`,
    ]).catch(() => undefined);
    return r === undefined ? undefined : true;
  });
  log(`e2e: ${url} serves a synthetic dump of ${docs} docs in 2 parts`);
  return url;
}

/**
 * Starts `git daemon` in the cluster namespace, serving a bare copy of HEAD as main (plus the e2e wiring for the
 * cluster `rootOf`), and clones it into the node.
 */
export async function serveCheckout(
  cluster: Cluster,
  node: ClusterNode,
  dumpUrl: string,
  log: (line: string) => void,
  rootOf = 'dev',
): Promise<GitServer> {
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
    [
      'netns',
      'exec',
      clusterNetns(cluster.runId),
      'git',
      'daemon',
      '--reuseaddr',
      '--export-all',
      `--base-path=${base}`,
      `--listen=${bridgeAddress()}`,
      `--port=${GIT_PORT}`,
      base,
    ],
    { stdio: 'ignore', detached: true },
  );
  daemon.unref();
  const commit = async (message: string, edit: (dir: string) => readonly string[] | void): Promise<string> => {
    // Only the files `edit` names are added: the clone also holds the node_modules link, which is no folder to
    // .gitignore's `node_modules/`.
    const added = edit(cloneDir) ?? [];
    if (added.length) await git(cloneDir, 'add', '--', ...added);
    await git(cloneDir, 'commit', '--quiet', '-am', message);
    await git(cloneDir, 'push', '--quiet', 'origin', 'HEAD:main');
    return (await git(cloneDir, 'rev-parse', 'HEAD')).trim();
  };
  const head = await commit(
    "e2e: the root app reads the cluster network's git server; no dex (no image in the bundle); CPU requests for two cores",
    (dir) => e2eWiring(dir, url, dumpUrl, rootOf),
  );
  await waitFor(`git daemon on ${url}`, 30_000, async () => {
    const served = await run('ip', [
      'netns',
      'exec',
      clusterNetns(cluster.runId),
      'git',
      'ls-remote',
      url,
      'main',
    ]).catch(() => '');
    // The node reaches it over the bridge, as Argo CD's repo server will (the node has bash, not git).
    const reach = await node.exec(['bash', '-c', `exec 3<>/dev/tcp/${bridgeAddress()}/${GIT_PORT}`]);
    return served.startsWith(head) && reach.code === 0 ? true : undefined;
  });
  log(`e2e: ${url} serves ${head.slice(0, 12)} (this checkout's HEAD plus the e2e wiring)`);
  return { url, head, cloneDir, commit };
}
