// Argo CD wiring: root apps, sync waves, sync options, projects, and the Lua health checks run in
// the Lua VM Argo CD embeds.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  APP_COMPONENTS,
  APP_OVERLAYS,
  CLUSTER_COMPONENTS,
  CLUSTERS,
  exec,
  objectId,
  parseObjects,
  render,
  renderWithComponents,
  type K8sObject,
} from './gitops.js';
import { cacheRoot, repoRoot } from '../harness/paths.js';

type Dict = Record<string, unknown>;
const dict = (v: unknown): Dict => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Dict) : {});
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

const wave = (o: K8sObject): number => Number(o.metadata.annotations?.['argocd.argoproj.io/sync-wave'] ?? '0');
const spec = (o: K8sObject | undefined): Dict => dict(o?.spec);
const syncOptions = (o: K8sObject | undefined): string[] => list(dict(spec(o).syncPolicy).syncOptions).map(String);

async function clusterApps(cluster: string): Promise<{ apps: K8sObject[]; projects: K8sObject[]; root: K8sObject }> {
  const objects = await render(`clusters/${cluster}`);
  const rootObjects = await render(`argocd/root/${cluster}`);
  const root = rootObjects.find((o) => o.kind === 'Application');
  if (!root) throw new Error(`argocd/root/${cluster}: no root Application`);
  return {
    apps: objects.filter((o) => o.kind === 'Application'),
    projects: objects.filter((o) => o.kind === 'AppProject'),
    root,
  };
}

describe.each(CLUSTERS)('cluster %s', (cluster) => {
  it('the root app syncs clusters/<name> from the same repository as every child', async () => {
    const { apps, root } = await clusterApps(cluster);
    const rootSource = dict(spec(root).source);
    expect(rootSource.path).toBe(`clusters/${cluster}`);
    expect(dict(spec(root).syncPolicy).automated).toBeDefined();
    for (const app of apps) {
      const source = dict(spec(app).source);
      expect(source.repoURL, objectId(app)).toBe(rootSource.repoURL);
      expect(source.targetRevision, objectId(app)).toBe(rootSource.targetRevision);
      expect(
        existsSync(path.join(repoRoot, String(source.path), 'kustomization.yaml')),
        `${objectId(app)}: ${String(source.path)}`,
      ).toBe(true);
      expect(dict(spec(app).destination).server).toBe('https://kubernetes.default.svc');
      expect(app.metadata.namespace).toBe('argocd');
    }
  });

  it('sync waves: projects, Argo CD, Flannel, local-path, KubeRay and the object store, then wiki-tokenizer', async () => {
    const { apps, projects } = await clusterApps(cluster);
    const waveOf = (name: string): number => {
      const app = apps.find((a) => a.metadata.name === name);
      if (!app) throw new Error(`clusters/${cluster}: no Application ${name}`);
      return wave(app);
    };
    const order = ['argocd', 'flannel', 'local-path', 'kuberay', 'wiki-tokenizer'].map(waveOf);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(new Set(order).size).toBe(order.length);
    expect(waveOf('object-store')).toBe(waveOf('kuberay'));
    for (const p of projects) expect(wave(p)).toBeLessThan(Math.min(...order));
    // The root app is part of its own cluster folder: Argo CD manages it like the rest.
    expect(apps.map((a) => a.metadata.name).sort()).toEqual([
      'argocd',
      'flannel',
      'kuberay',
      'local-path',
      'object-store',
      'root',
      'wiki-tokenizer',
    ]);
  });

  it('wiki-tokenizer is alone in the last wave, with every optional platform app enabled', async () => {
    // A wave after wiki-tokenizer would make every root sync wait for its health, which in prod
    // waits for a person, and fail when its CronJob turns Degraded.
    const apps = (await renderWithComponents(`clusters/${cluster}`, CLUSTER_COMPONENTS)).filter(
      (o) => o.kind === 'Application' && o.metadata.name !== 'root',
    );
    const app = apps.find((a) => a.metadata.name === 'wiki-tokenizer');
    if (!app) throw new Error('no wiki-tokenizer Application');
    for (const other of apps.filter((a) => a !== app)) expect(wave(other), objectId(other)).toBeLessThan(wave(app));
    expect(apps.map((a) => a.metadata.name)).toEqual(expect.arrayContaining(['monitoring', 'logging']));
  });

  it('every Application retries a failed sync with backoff', async () => {
    const objects = await renderWithComponents(`clusters/${cluster}`, CLUSTER_COMPONENTS);
    for (const app of objects.filter((o) => o.kind === 'Application')) {
      const retry = dict(dict(spec(app).syncPolicy).retry);
      expect(Number(retry.limit), objectId(app)).toBeGreaterThan(0);
      expect(dict(retry.backoff).duration, objectId(app)).toBeDefined();
    }
  });

  it('optional apps in the wiki-tokenizer namespace create it, since they sync before the app', async () => {
    const objects = await renderWithComponents(`clusters/${cluster}`, CLUSTER_COMPONENTS);
    const app = objects.find((o) => o.kind === 'Application' && o.metadata.name === 'wiki-tokenizer');
    for (const o of objects.filter((x) => x.kind === 'Application' && x !== app)) {
      if (dict(spec(o).destination).namespace === dict(spec(app).destination).namespace)
        expect(syncOptions(o), objectId(o)).toContain('CreateNamespace=true');
    }
  });

  it('server-side apply where client-side apply cannot work: KubeRay CRDs and Argo CD itself', async () => {
    const { apps } = await clusterApps(cluster);
    for (const name of ['kuberay', 'argocd'])
      expect(syncOptions(apps.find((a) => a.metadata.name === name)), name).toContain('ServerSideApply=true');
    // Argo CD must not prune itself on a bad commit.
    expect(dict(dict(spec(apps.find((a) => a.metadata.name === 'argocd')).syncPolicy).automated).prune).toBe(false);
  });

  it('infrastructure syncs automatically with self-heal', async () => {
    const { apps } = await clusterApps(cluster);
    for (const name of ['argocd', 'flannel', 'local-path', 'kuberay']) {
      expect(dict(dict(spec(apps.find((a) => a.metadata.name === name)).syncPolicy).automated).selfHeal, name).toBe(
        true,
      );
    }
  });

  it('wiki-tokenizer leaves the autoscaled worker replicas to the autoscaler', async () => {
    const { apps } = await clusterApps(cluster);
    const app = apps.find((a) => a.metadata.name === 'wiki-tokenizer');
    const overlay = await render(String(dict(spec(app).source).path));
    const rc = overlay.find((o) => o.kind === 'RayCluster');
    expect(dict(rc?.spec).enableInTreeAutoscaling).toBe(true);
    const ignored = list(spec(app).ignoreDifferences).map(dict);
    expect(
      ignored.find(
        (d) =>
          d.group === 'ray.io' &&
          d.kind === 'RayCluster' &&
          list(d.jqPathExpressions).includes('.spec.workerGroupSpecs[].replicas'),
      ),
    ).toBeDefined();
    expect(syncOptions(app)).toContain('RespectIgnoreDifferences=true');
  });

  it('every Application is allowed by its project: destination namespace and source repository', async () => {
    const { apps, projects } = await clusterApps(cluster);
    for (const app of apps) {
      const project = projects.find((p) => p.metadata.name === spec(app).project);
      expect(project, `${objectId(app)}: project ${String(spec(app).project)}`).toBeDefined();
      const dests = list(spec(project).destinations).map(dict);
      const dest = dict(spec(app).destination);
      expect(
        dests.some((d) => d.server === dest.server && d.namespace === dest.namespace),
        `${objectId(app)} -> ${String(dest.namespace)}`,
      ).toBe(true);
      expect(list(spec(project).sourceRepos)).toContain(dict(spec(app).source).repoURL);
    }
  });
});

describe('projects', () => {
  it('prod syncs wiki-tokenizer by hand, dev automatically', async () => {
    const prod = (await clusterApps('prod')).apps.find((a) => a.metadata.name === 'wiki-tokenizer');
    const dev = (await clusterApps('dev')).apps.find((a) => a.metadata.name === 'wiki-tokenizer');
    expect(dict(spec(prod).syncPolicy).automated).toBeUndefined();
    expect(dict(spec(dev).syncPolicy).automated).toBeDefined();
  });

  it('the tokenize-wiki project allows exactly what the app and its monitoring deploy, and never Secrets', async () => {
    const project = (await render('argocd/projects')).find((o) => o.metadata.name === 'tokenize-wiki');
    const allowed = new Set(
      [...list(spec(project).namespaceResourceWhitelist), ...list(spec(project).clusterResourceWhitelist)].map(
        (r) => `${String(dict(r).group)}/${String(dict(r).kind)}`,
      ),
    );
    const used = new Set<string>();
    const renders = [
      ...(await Promise.all(APP_OVERLAYS.map((o) => renderWithComponents(o, APP_COMPONENTS)))),
      await render('infrastructure/monitoring'),
    ];
    for (const objects of renders) {
      for (const o of objects) {
        const group = o.apiVersion.includes('/') ? (o.apiVersion.split('/')[0] ?? '') : '';
        used.add(`${group}/${o.kind}`);
        if (o.kind !== 'Namespace') expect(o.metadata.namespace, objectId(o)).toBe('tokenize-wiki');
      }
    }
    expect([...used].filter((k) => !allowed.has(k))).toEqual([]);
    expect([...allowed].filter((k) => !used.has(k))).toEqual([]);
    expect(allowed.has('/Secret')).toBe(false);
    expect(list(spec(project).destinations)).toEqual([
      { server: 'https://kubernetes.default.svc', namespace: 'tokenize-wiki' },
    ]);
  });

  it('the optional monitoring app can be added to a cluster, wired like the others, before wiki-tokenizer', async () => {
    const objects = await renderWithComponents('clusters/prod', ['clusters/components/monitoring']);
    const monitoring = objects.find((o) => o.kind === 'Application' && o.metadata.name === 'monitoring');
    const app = objects.find((o) => o.kind === 'Application' && o.metadata.name === 'wiki-tokenizer');
    expect(monitoring && app && wave(monitoring) < wave(app)).toBe(true);
    expect(dict(spec(monitoring).source).path).toBe('infrastructure/monitoring');
    expect(dict(spec(monitoring).source).repoURL).toBe(dict(spec(app).source).repoURL);
  });
});

describe('argocd-cm', () => {
  it('carries the health checks for Application, RayCluster and RayJob from argocd/install/health', async () => {
    const cm = (await render('argocd/install')).find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'argocd-cm');
    expect(cm?.metadata.namespace).toBe('argocd');
    const data = dict(cm?.data);
    for (const [key, file] of [
      ['resource.customizations.health.argoproj.io_Application', 'application.lua'],
      ['resource.customizations.health.ray.io_RayCluster', 'raycluster.lua'],
      ['resource.customizations.health.ray.io_RayJob', 'rayjob.lua'],
    ] as const) {
      expect(data[key], key).toBe(readFileSync(path.join(repoRoot, 'argocd/install/health', file), 'utf8'));
    }
  });

  it('the install is the upstream one, in namespace argocd, at the pinned version', async () => {
    const objects = await render('argocd/install');
    const server = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'argocd-server');
    expect(server?.metadata.namespace).toBe('argocd');
    expect(
      objects
        .filter((o) => o.kind === 'CustomResourceDefinition')
        .map((o) => o.metadata.name)
        .sort(),
    ).toEqual(expect.arrayContaining(['applications.argoproj.io', 'appprojects.argoproj.io']));
  });
});

// ---------------------------------------------------------------------------------------------
// Lua health checks, executed by gopher-lua (the VM Argo CD embeds) with Argo CD's libraries.

let luahealth = '';

beforeAll(async () => {
  const src = path.join(repoRoot, 'test/gitops/luahealth');
  const hash = createHash('sha256');
  for (const f of ['main.go', 'go.mod', 'go.sum']) hash.update(await fs.readFile(path.join(src, f)));
  luahealth = path.join(cacheRoot(), 'bin', `luahealth-${hash.digest('hex').slice(0, 16)}`);
  if (existsSync(luahealth)) return;
  await fs.mkdir(path.dirname(luahealth), { recursive: true });
  const tmp = `${luahealth}.${process.pid}.tmp`;
  const r = await exec('go', ['build', '-o', tmp, '.'], {
    cwd: src,
    env: { ...process.env, GOFLAGS: '-mod=readonly', GOWORK: 'off' },
  });
  if (r.code !== 0) throw new Error(`go build test/gitops/luahealth failed: ${r.stderr.trim()}`);
  await fs.rename(tmp, luahealth);
});

async function health(script: string, obj: unknown): Promise<{ status: string; message: string }> {
  const file = path.join(repoRoot, 'argocd/install/health', script);
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'tw-lua-'));
  try {
    const input = path.join(tmp, 'obj.json');
    await fs.writeFile(input, JSON.stringify(obj));
    const r = await exec('sh', ['-c', `"$0" "$1" < "$2"`, luahealth, file, input]);
    if (r.code !== 0) throw new Error(`${script}: ${r.stderr.trim()}`);
    return JSON.parse(r.stdout) as { status: string; message: string };
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

const cond = (type: string, status: 'True' | 'False', message = ''): Dict => ({ type, status, message });

describe('health checks (Lua)', () => {
  it.each([
    ['no status yet', {}, 'Progressing'],
    ['child healthy', { status: { health: { status: 'Healthy' } } }, 'Healthy'],
    ['child degraded', { status: { health: { status: 'Degraded', message: 'boom' } } }, 'Degraded'],
    ['child progressing', { status: { health: { status: 'Progressing' } } }, 'Progressing'],
  ])('Application: %s', async (_name, obj, expected) => {
    expect((await health('application.lua', obj)).status).toBe(expected);
  });

  it.each([
    ['no status yet', {}, 'Progressing'],
    ['head not ready', { status: { conditions: [cond('HeadPodReady', 'False', 'pulling image')] } }, 'Progressing'],
    [
      'head ready',
      {
        status: {
          conditions: [cond('HeadPodReady', 'True'), cond('RayClusterProvisioned', 'True')],
          readyWorkerReplicas: 1,
          desiredWorkerReplicas: 2,
        },
      },
      'Healthy',
    ],
    [
      'replica failure',
      { status: { conditions: [cond('HeadPodReady', 'True'), cond('ReplicaFailure', 'True', 'quota exceeded')] } },
      'Degraded',
    ],
    ['suspended', { status: { conditions: [cond('RayClusterSuspended', 'True')] } }, 'Suspended'],
    ['suspending', { status: { conditions: [cond('RayClusterSuspending', 'True')] } }, 'Progressing'],
    ['old operator: state ready', { status: { state: 'ready' } }, 'Healthy'],
    ['old operator: state failed', { status: { state: 'failed', reason: 'x' } }, 'Degraded'],
  ])('RayCluster: %s', async (_name, obj, expected) => {
    const h = await health('raycluster.lua', obj);
    expect(h.status).toBe(expected);
    if (expected === 'Degraded') expect(h.message).not.toBe('');
  });

  it.each([
    ['new', {}, 'Progressing'],
    ['running', { status: { jobDeploymentStatus: 'Running', jobStatus: 'RUNNING' } }, 'Progressing'],
    ['waiting', { status: { jobDeploymentStatus: 'Waiting' } }, 'Progressing'],
    ['succeeded', { status: { jobDeploymentStatus: 'Complete', jobStatus: 'SUCCEEDED' } }, 'Healthy'],
    [
      'ray job failed',
      { status: { jobDeploymentStatus: 'Complete', jobStatus: 'FAILED', message: 'exit 1' } },
      'Degraded',
    ],
    ['deadline exceeded', { status: { jobDeploymentStatus: 'Failed', reason: 'DeadlineExceeded' } }, 'Degraded'],
    ['invalid spec', { status: { jobDeploymentStatus: 'ValidationFailed', message: 'bad' } }, 'Degraded'],
    ['suspended', { status: { jobDeploymentStatus: 'Suspended' } }, 'Suspended'],
  ])('RayJob: %s', async (_name, obj, expected) => {
    expect((await health('rayjob.lua', obj)).status).toBe(expected);
  });
});

describe('repository and revision', () => {
  const rootSource = async (cluster: string): Promise<Dict> =>
    dict(spec((await render(`argocd/root/${cluster}`)).find((o) => o.kind === 'Application')).source);

  it.each(CLUSTERS)(
    'cluster %s: named only by its root app; a changed root app rewires every Application and AppProject',
    async (cluster) => {
      const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'tw-wiring-'));
      try {
        for (const top of ['argocd', 'clusters'])
          await fs.cp(path.join(repoRoot, top), path.join(scratch, top), { recursive: true });
        const rootFile = path.join(scratch, 'argocd/root', cluster, 'root.yaml');
        const { repoURL, targetRevision } = await rootSource(cluster);
        const fork = 'https://git.example.org/someone/tokenize-wiki-fork.git';
        const text = await fs.readFile(rootFile, 'utf8');
        await fs.writeFile(
          rootFile,
          text
            .replace(String(repoURL), fork)
            .replace(`targetRevision: ${String(targetRevision)}`, 'targetRevision: fork-branch'),
        );
        for (const dir of [`clusters/${cluster}`, `argocd/root/${cluster}`]) {
          const r = await exec('kubectl', ['kustomize', path.join(scratch, dir)]);
          expect(r.code, r.stderr).toBe(0);
          const objects = parseObjects(r.stdout, dir);
          for (const app of objects.filter((o) => o.kind === 'Application')) {
            expect(dict(spec(app).source).repoURL, `${dir}: ${objectId(app)}`).toBe(fork);
            expect(dict(spec(app).source).targetRevision, `${dir}: ${objectId(app)}`).toBe('fork-branch');
          }
          for (const project of objects.filter((o) => o.kind === 'AppProject'))
            expect(list(spec(project).sourceRepos), `${dir}: ${objectId(project)}`).toEqual([fork]);
        }
      } finally {
        await fs.rm(scratch, { recursive: true, force: true });
      }
    },
  );

  it('no other file of argocd/ or clusters/ names a repository or a revision', async () => {
    const offenders: string[] = [];
    for (const top of ['argocd', 'clusters']) {
      for (const name of await fs.readdir(path.join(repoRoot, top), { recursive: true })) {
        // Vendored upstream files are not ours (Argo CD's install.yaml links to GitHub).
        if (!name.endsWith('.yaml') || /^root\/[^/]+\/root\.yaml$/.test(name) || name.split('/').includes('upstream'))
          continue;
        const text = await fs.readFile(path.join(repoRoot, top, name), 'utf8');
        if (/^\s*(repoURL|targetRevision):/m.test(text) || /https:\/\/github\.com\//.test(text))
          offenders.push(`${top}/${name}`);
      }
    }
    expect(offenders).toEqual([]);
  });

  it('prod tracks a release branch or tag that only a promotion moves; dev tracks main', async () => {
    const prod = await rootSource('prod');
    const dev = await rootSource('dev');
    expect(dev.targetRevision).toBe('main');
    expect(String(prod.targetRevision)).toMatch(/^(release\/[a-z0-9.-]+|v\d+\.\d+\.\d+)$/);
    expect(readFileSync(path.join(repoRoot, 'docs/gitops.md'), 'utf8')).toContain(
      `git push origin <commit>:refs/heads/${String(prod.targetRevision)}`,
    );
  });
});

describe('CustomResourceDefinitions', () => {
  it.each(['argocd/install', 'infrastructure/kuberay'])(
    '%s: Argo CD never prunes or deletes a CRD (that would delete every object of its kind)',
    async (dir) => {
      const crds = (await render(dir)).filter((o) => o.kind === 'CustomResourceDefinition');
      expect(crds.length).toBeGreaterThan(0);
      for (const crd of crds) {
        const options = (crd.metadata.annotations?.['argocd.argoproj.io/sync-options'] ?? '')
          .split(',')
          .map((x) => x.trim());
        expect(options, objectId(crd)).toEqual(expect.arrayContaining(['Prune=false', 'Delete=false']));
      }
    },
  );
});

describe('Argo CD pods', () => {
  it('every container asks for CPU and memory and has a memory limit', async () => {
    const problems: string[] = [];
    for (const o of (await render('argocd/install')).filter(
      (x) => x.kind === 'Deployment' || x.kind === 'StatefulSet',
    )) {
      const pod = dict(dict(dict(o.spec).template).spec);
      for (const c of [...list(pod.initContainers), ...list(pod.containers)].map(dict)) {
        const res = dict(c.resources);
        for (const [a, b] of [
          ['requests', 'cpu'],
          ['requests', 'memory'],
          ['limits', 'memory'],
        ] as const) {
          if (dict(res[a])[b] === undefined) problems.push(`${objectId(o)} ${String(c.name)}: no resources.${a}.${b}`);
        }
      }
    }
    expect(problems).toEqual([]);
  });
});
