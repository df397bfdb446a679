// Policies over the rendered output: what every object of ours must look like, and the settings
// the cluster's behaviour depends on (the submitter CronJob, the run files, RBAC, the RayCluster).
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import YAML from 'yaml';
import { describe, expect, it } from 'vitest';
import { isImmutableTag } from '../../scripts/build-images.mjs';
import {
  fitProblems,
  podRequests,
  quantity,
  rayPods,
  type RayClusterLike,
  type Resources,
} from '../../scripts/lib/sizing.js';
import { rayJobObject } from '../../src/runs/backends/kuberay.js';
import {
  APP_COMPONENTS,
  APP_OVERLAYS,
  CLUSTERS,
  listKustomizations,
  loadPins,
  objectId,
  render,
  renderWithComponents,
  VENDORED,
  type K8sObject,
} from './gitops.js';
import { repoRoot } from '../harness/paths.js';

type Dict = Record<string, unknown>;
const dict = (v: unknown): Dict => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Dict) : {});
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const at = (v: unknown, ...keys: (string | number)[]): unknown =>
  keys.reduce<unknown>((cur, k) => (typeof k === 'number' ? list(cur)[k] : dict(cur)[k]), v);

/** Our own workloads: each overlay alone and with every optional component, plus monitoring. */
async function ourRenders(): Promise<{ label: string; objects: K8sObject[] }[]> {
  const out: { label: string; objects: K8sObject[] }[] = [];
  for (const o of APP_OVERLAYS) {
    out.push({ label: o, objects: await render(o) });
    out.push({ label: `${o} + components`, objects: await renderWithComponents(o, APP_COMPONENTS) });
  }
  out.push({ label: 'infrastructure/monitoring', objects: await render('infrastructure/monitoring') });
  return out;
}

/** Everything that gets deployed; a base (logical image names) is only deployed through its overlays. */
async function everyRender(): Promise<{ label: string; objects: K8sObject[] }[]> {
  const out = await ourRenders();
  for (const k of listKustomizations().filter((x) => x.kind === 'Kustomization' && !x.dir.endsWith('/base')))
    out.push({ label: k.dir, objects: await render(k.dir) });
  return out;
}

interface PodSpecAt {
  where: string;
  spec: Dict;
}

/** Every pod spec inside an object: workloads, CronJob job templates, RayCluster groups. */
function podSpecs(o: K8sObject): PodSpecAt[] {
  const id = objectId(o);
  switch (o.kind) {
    case 'Deployment':
    case 'StatefulSet':
    case 'DaemonSet':
    case 'Job':
      return [{ where: id, spec: dict(at(o, 'spec', 'template', 'spec')) }];
    case 'CronJob':
      return [{ where: id, spec: dict(at(o, 'spec', 'jobTemplate', 'spec', 'template', 'spec')) }];
    case 'RayCluster':
      return [
        { where: `${id} head`, spec: dict(at(o, 'spec', 'headGroupSpec', 'template', 'spec')) },
        ...list(at(o, 'spec', 'workerGroupSpecs')).map((g, i) => ({
          where: `${id} workers[${i}]`,
          spec: dict(at(g, 'template', 'spec')),
        })),
      ];
    default:
      return [];
  }
}

function containersOf(p: PodSpecAt): { where: string; c: Dict }[] {
  return [...list(p.spec.initContainers), ...list(p.spec.containers)].map((c) => ({
    where: `${p.where} container ${String(dict(c).name)}`,
    c: dict(c),
  }));
}

/** Images named anywhere: containers, and pod templates kept as text in ConfigMaps (local-path's helper pod). */
function imagesOf(o: K8sObject): { where: string; image: string }[] {
  const found: { where: string; image: string }[] = [];
  for (const p of podSpecs(o))
    for (const { where, c } of containersOf(p)) found.push({ where, image: String(c.image) });
  if (o.kind === 'RayCluster' && at(o, 'spec', 'autoscalerOptions', 'image') !== undefined) {
    found.push({ where: `${objectId(o)} autoscaler`, image: String(at(o, 'spec', 'autoscalerOptions', 'image')) });
  }
  if (o.kind === 'ConfigMap') {
    for (const [key, text] of Object.entries(dict(o.data))) {
      for (const m of String(text).matchAll(/^\s*image:\s*["']?([^\s"']+)/gm))
        found.push({ where: `${objectId(o)} data.${key}`, image: m[1] ?? '' });
    }
  }
  return found;
}

describe('policy: our workloads', () => {
  it('every container has CPU and memory requests and a memory limit', async () => {
    const problems: string[] = [];
    for (const r of await ourRenders()) {
      for (const o of r.objects) {
        for (const p of podSpecs(o)) {
          for (const { where, c } of containersOf(p)) {
            const res = dict(c.resources);
            for (const k of ['requests.cpu', 'requests.memory', 'limits.memory']) {
              const [a, b] = k.split('.') as [string, string];
              if (at(res, a, b) === undefined) problems.push(`${r.label}: ${where}: no resources.${k}`);
            }
          }
        }
        if (o.kind === 'RayCluster' && at(o, 'spec', 'enableInTreeAutoscaling') === true) {
          if (at(o, 'spec', 'autoscalerOptions', 'resources', 'limits', 'memory') === undefined)
            problems.push(`${r.label}: ${objectId(o)}: autoscaler sidecar has no resources`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('every pod runs as non-root with RuntimeDefault seccomp; no container may escalate or keep capabilities', async () => {
    const problems: string[] = [];
    for (const r of await ourRenders()) {
      for (const o of r.objects) {
        for (const p of podSpecs(o)) {
          const pod = dict(p.spec.securityContext);
          if (pod.runAsNonRoot !== true)
            problems.push(`${r.label}: ${p.where}: securityContext.runAsNonRoot is not true`);
          if (at(pod, 'seccompProfile', 'type') !== 'RuntimeDefault')
            problems.push(`${r.label}: ${p.where}: seccompProfile is not RuntimeDefault`);
          if (p.spec.hostNetwork === true || p.spec.hostPID === true)
            problems.push(`${r.label}: ${p.where}: uses the host's namespaces`);
          for (const { where, c } of containersOf(p)) {
            const sc = dict(c.securityContext);
            if (sc.allowPrivilegeEscalation !== false)
              problems.push(`${r.label}: ${where}: allowPrivilegeEscalation is not false`);
            if (sc.privileged === true) problems.push(`${r.label}: ${where}: privileged`);
            if (JSON.stringify(at(sc, 'capabilities', 'drop')) !== '["ALL"]')
              problems.push(`${r.label}: ${where}: capabilities.drop is not [ALL]`);
            if (list(at(sc, 'capabilities', 'add')).length > 0)
              problems.push(`${r.label}: ${where}: adds capabilities`);
            if (typeof sc.readOnlyRootFilesystem !== 'boolean')
              problems.push(`${r.label}: ${where}: readOnlyRootFilesystem not decided`);
          }
        }
        if (o.kind === 'RayCluster') {
          const sc = dict(at(o, 'spec', 'autoscalerOptions', 'securityContext'));
          if (sc.allowPrivilegeEscalation !== false || sc.runAsNonRoot !== true)
            problems.push(`${r.label}: ${objectId(o)}: autoscaler securityContext`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('the submitter, which needs no writable root, has a read-only root filesystem', async () => {
    for (const r of await ourRenders()) {
      for (const o of r.objects.filter((x) => x.metadata.labels?.['app.kubernetes.io/component'] === 'submitter')) {
        for (const p of podSpecs(o))
          for (const { where, c } of containersOf(p))
            expect(at(c, 'securityContext', 'readOnlyRootFilesystem'), `${r.label}: ${where}`).toBe(true);
      }
    }
  });

  it('every object carries the app labels', async () => {
    const problems: string[] = [];
    for (const r of await ourRenders()) {
      for (const o of r.objects) {
        const labels = o.metadata.labels ?? {};
        for (const key of [
          'tokenize-wiki/app',
          'app.kubernetes.io/name',
          'app.kubernetes.io/part-of',
          'app.kubernetes.io/component',
        ]) {
          if (!labels[key]) problems.push(`${r.label}: ${objectId(o)}: no label ${key}`);
        }
        for (const p of podSpecs(o)) {
          // Pod templates too: Services, NetworkPolicies and PDBs select on these.
          const tmpl =
            o.kind === 'CronJob'
              ? at(o, 'spec', 'jobTemplate', 'spec', 'template')
              : o.kind === 'RayCluster'
                ? undefined
                : at(o, 'spec', 'template');
          if (tmpl !== undefined && !dict(at(tmpl, 'metadata', 'labels'))['app.kubernetes.io/component'])
            problems.push(`${r.label}: ${p.where}: pod template has no component label`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('everything lives in the tokenize-wiki namespace', async () => {
    for (const r of await ourRenders()) {
      for (const o of r.objects.filter((x) => x.kind !== 'Namespace'))
        expect(o.metadata.namespace, `${r.label}: ${objectId(o)}`).toBe('tokenize-wiki');
    }
  });
});

describe('policy: the whole tree', () => {
  it('every image has an explicit tag, never latest', async () => {
    const problems: string[] = [];
    for (const r of await everyRender()) {
      for (const o of r.objects) {
        for (const { where, image } of imagesOf(o)) {
          const tag = /^(?:[^/]+\/)*[^/:@]+(?::([^@]+))?(?:@sha256:[0-9a-f]{64})?$/.exec(image)?.[1];
          if (!image.includes('@sha256:') && (!tag || tag === 'latest'))
            problems.push(`${r.label}: ${where}: image ${image} has no pinned tag`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('no container pulls Always: an air-gapped node holds its images from the bundle and cannot pull', async () => {
    const problems: string[] = [];
    for (const r of await everyRender()) {
      for (const o of r.objects) {
        for (const p of podSpecs(o)) {
          for (const { where, c } of containersOf(p))
            if (c.imagePullPolicy === 'Always') problems.push(`${r.label}: ${where}`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('no Secret with data is rendered, and no file of the tree defines one', async () => {
    for (const r of await everyRender()) {
      for (const o of r.objects.filter((x) => x.kind === 'Secret')) {
        expect(
          Object.keys(dict(o.data)).length + Object.keys(dict(o.stringData)).length,
          `${r.label}: ${objectId(o)} carries data`,
        ).toBe(0);
      }
    }
    const ours: string[] = [];
    const walk = (rel: string): void => {
      for (const e of readdirSync(path.join(repoRoot, rel), { withFileTypes: true })) {
        const p = path.posix.join(rel, e.name);
        // Vendored upstream files may declare empty Secrets (Argo CD's); their renders are checked above.
        if (e.isDirectory()) {
          if (e.name !== VENDORED) walk(p);
        } else if (/\.ya?ml$/.test(e.name) && /^kind:\s*Secret\s*$/m.test(readFileSync(path.join(repoRoot, p), 'utf8')))
          ours.push(p);
      }
    };
    for (const top of ['argocd', 'clusters', 'infrastructure', 'apps']) walk(top);
    expect(ours).toEqual([]);
  });

  it('every object of the infrastructure and Argo CD kustomizations is labelled with its app', async () => {
    for (const dir of [
      'argocd/install',
      'argocd/projects',
      'clusters/prod',
      'clusters/dev',
      'infrastructure/flannel',
      'infrastructure/local-path',
      'infrastructure/kuberay',
    ]) {
      for (const o of await render(dir))
        expect(o.metadata.labels?.['tokenize-wiki/app'], `${dir}: ${objectId(o)}`).toBeTruthy();
    }
  });
});

describe('the submitter', () => {
  const RUN_FILE_KEYS = [
    'run_id',
    'dumps',
    'text_field',
    'encoding',
    'max_docs_per_task',
    'output_prefix',
    'manifest_uri',
    'tasks_per_job',
    'job_target_seconds',
    'cpus_per_job',
    'max_jobs_in_flight',
    'max_attempts',
    'backend',
    'paused',
    'rayjob_ttl_seconds',
    'job_timeout_seconds',
  ];

  it.each(APP_OVERLAYS)(
    '%s: the CronJob reconciles the whole mounted runs ConfigMap, keeping its budget inside its deadline and period',
    async (overlay) => {
      const objects = await render(overlay);
      const cron = objects.find((o) => o.kind === 'CronJob' && o.metadata.name === 'submitter');
      expect(cron).toBeDefined();
      const pod = dict(at(cron, 'spec', 'jobTemplate', 'spec', 'template', 'spec'));
      const container = dict(list(pod.containers)[0]);
      const args = list(container.args).map(String);
      expect(args[0]).toBe('submit');
      expect(args).toContain('--once');
      // A folder, not one file: adding a run is one new run file, with no CronJob change.
      const runPath = args[args.indexOf('--run') + 1] ?? '';
      const mount = list(container.volumeMounts)
        .map(dict)
        .find((m) => m.mountPath === runPath);
      expect(mount, `--run ${runPath} is not a mounted folder`).toBeDefined();
      expect(mount?.mountPath).toBe('/etc/tokenize-wiki/runs');
      const budget = Number(args[args.indexOf('--budget-seconds') + 1]);
      const deadline = Number(at(cron, 'spec', 'jobTemplate', 'spec', 'activeDeadlineSeconds'));
      expect(budget).toBeGreaterThan(0);
      expect(budget + 60).toBeLessThanOrEqual(deadline);
      expect(String(at(cron, 'spec', 'schedule'))).toBe('*/5 * * * *');
      expect(deadline).toBeLessThan(300);
      expect(at(cron, 'spec', 'concurrencyPolicy')).toBe('Forbid');
      const volume = list(pod.volumes)
        .map(dict)
        .find((v) => v.name === mount?.name);
      const cmName = String(at(volume, 'configMap', 'name'));
      const cm = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === cmName);
      expect(cm, `ConfigMap ${cmName} is not rendered (generator name reference broken?)`).toBeDefined();
      expect(cmName).toMatch(/^tokenize-wiki-runs-[a-z0-9]{10}$/);
      const data = dict(cm?.data);
      expect(Object.keys(data).length).toBeGreaterThan(0);
      // Every run file in the ConfigMap is a run file of the documented shape whose data lives in
      // the object store (a local path would differ from pod to pod).
      const ids = new Set<string>();
      for (const [file, text] of Object.entries(data)) {
        const run = dict(YAML.parse(String(text)));
        for (const key of RUN_FILE_KEYS) expect(run, `${file}: missing ${key}`).toHaveProperty(key);
        expect(ids.has(String(run.run_id)), `${file}: run_id ${String(run.run_id)} used twice`).toBe(false);
        ids.add(String(run.run_id));
        for (const uri of [run.output_prefix, run.manifest_uri, ...list(run.dumps)])
          expect(String(uri), `${file}`).toMatch(/^s3:\/\//);
        expect(at(run, 'backend', 'kind'), `${file}: backend.kind`).toBe('kuberay');
        expect(at(run, 'backend', 'ray_cluster')).toBe('tokenize-wiki');
        expect(at(run, 'backend', 'namespace')).toBe('tokenize-wiki');
      }
    },
  );

  it('every run file in a runs/ folder is listed in its generator, and only those', () => {
    for (const k of listKustomizations()) {
      const file = path.join(repoRoot, k.dir, 'kustomization.yaml');
      const gens = list(dict(YAML.parse(readFileSync(file, 'utf8'))).configMapGenerator).map(dict);
      const runsGen = gens.find((g) => g.name === 'tokenize-wiki-runs');
      if (!runsGen) continue;
      const listed = list(runsGen.files).map(String).sort();
      const runsDir = path.join(repoRoot, k.dir, path.posix.dirname(listed[0] ?? 'runs/x'));
      const present = readdirSync(runsDir)
        .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
        .map((f) => path.posix.join(path.posix.dirname(listed[0] ?? ''), f).replace(/^\.\//, ''))
        .sort();
      expect(listed, `${k.dir}: configMapGenerator tokenize-wiki-runs vs the files on disk`).toEqual(present);
    }
  });

  it('the CronJob never overlaps itself, skips stale ticks, ends before the next tick and keeps a short history', async () => {
    for (const overlay of APP_OVERLAYS) {
      const cron = (await render(overlay)).find((o) => o.kind === 'CronJob');
      const spec = dict(cron?.spec);
      const every = /^\*\/(\d+) \* \* \* \*$/.exec(String(spec.schedule));
      expect(every, `${overlay}: schedule ${String(spec.schedule)} is not */N * * * *`).not.toBeNull();
      const periodSeconds = Number(every?.[1]) * 60;
      expect(spec.concurrencyPolicy).toBe('Forbid');
      expect(Number(spec.startingDeadlineSeconds)).toBeGreaterThan(0);
      expect(Number(spec.startingDeadlineSeconds)).toBeLessThan(periodSeconds);
      expect(Number(spec.successfulJobsHistoryLimit)).toBeLessThanOrEqual(5);
      expect(Number(spec.failedJobsHistoryLimit)).toBeGreaterThanOrEqual(1);
      const job = dict(at(spec, 'jobTemplate', 'spec'));
      expect(Number(job.activeDeadlineSeconds)).toBeLessThan(periodSeconds);
      expect(Number(job.backoffLimit)).toBeLessThanOrEqual(2);
      expect(at(job, 'template', 'spec', 'restartPolicy')).toBe('Never');
    }
  });

  it('the daemon variant suspends the CronJob and serves /healthz and /metrics on 9464', async () => {
    const objects = await renderWithComponents('apps/wiki-tokenizer/overlays/prod', [
      'apps/wiki-tokenizer/components/submitter-daemon',
    ]);
    expect(
      at(
        objects.find((o) => o.kind === 'CronJob'),
        'spec',
        'suspend',
      ),
    ).toBe(true);
    const deploy = objects.find((o) => o.kind === 'Deployment');
    const c = dict(list(at(deploy, 'spec', 'template', 'spec', 'containers'))[0]);
    expect(list(c.args)).toContain('--schedule');
    expect(at(c, 'ports', 0, 'containerPort')).toBe(9464);
    expect(at(c, 'livenessProbe', 'httpGet', 'path')).toBe('/healthz');
    const volume = list(at(deploy, 'spec', 'template', 'spec', 'volumes'))
      .map(dict)
      .find((v) => v.name === 'runs');
    expect(String(at(volume, 'configMap', 'name'))).toMatch(/^tokenize-wiki-runs-/);
    expect(objects.find((o) => o.kind === 'Service' && o.metadata.name === 'submitter-metrics')).toBeDefined();
  });

  it('RBAC is least privilege: exactly the API calls src/runs makes; no Secrets, no Pods, nothing cluster-wide', async () => {
    const objects = await render('apps/wiki-tokenizer/overlays/prod');
    expect(objects.filter((o) => o.kind === 'ClusterRole' || o.kind === 'ClusterRoleBinding')).toEqual([]);
    const role = objects.find((o) => o.kind === 'Role' && o.metadata.name === 'submitter');
    const rules = list(role?.rules).map((r) => {
      const d = dict(r);
      return `${list(d.apiGroups).join(',')}|${list(d.resources).join(',')}|${list(d.verbs).slice().sort().join(',')}`;
    });
    // The verbs of the client calls in the code that runs as this ServiceAccount.
    const VERB: Record<string, string> = {
      create: 'create',
      get: 'get',
      read: 'get',
      list: 'list',
      delete: 'delete',
      replace: 'update',
      patch: 'patch',
    };
    const called = (file: string, kind: string): string => {
      const text = readFileSync(path.join(repoRoot, file), 'utf8');
      const verbs = [...text.matchAll(new RegExp(`\\.(\\w+?)Namespaced${kind}\\(`, 'g'))].map(
        (m) => VERB[m[1] ?? ''] ?? `unknown:${m[1] ?? ''}`,
      );
      return [...new Set(verbs)].sort().join(',');
    };
    expect(rules.sort()).toEqual(
      [
        `coordination.k8s.io|leases|${called('src/runs/lease.ts', 'Lease')}`,
        `ray.io|rayjobs|${called('src/runs/backends/kuberay.ts', 'CustomObject')}`,
      ].sort(),
    );
    expect(rules.sort()).toEqual([
      'coordination.k8s.io|leases|create,get,update',
      'ray.io|rayjobs|create,delete,get,list',
    ]);
    const binding = objects.find((o) => o.kind === 'RoleBinding' && o.metadata.name === 'submitter');
    expect(at(binding, 'roleRef', 'name')).toBe('submitter');
    expect(list(binding?.subjects).map((s) => `${String(dict(s).kind)}/${String(dict(s).name)}`)).toEqual([
      'ServiceAccount/submitter',
    ]);
  });

  it('S3 credentials come from the hand-made Secret tokenize-wiki-s3; pulls may use regcred', async () => {
    const objects = await render('apps/wiki-tokenizer/overlays/prod');
    const configs = objects.filter(
      (o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('tokenize-wiki-s3-config'),
    );
    for (const o of objects) {
      for (const p of podSpecs(o)) {
        for (const { where, c } of containersOf(p)) {
          const from = list(c.envFrom).map(dict);
          expect(
            from.map((f) => at(f, 'secretRef', 'name')),
            where,
          ).toContain('tokenize-wiki-s3');
          expect(
            from.map((f) => at(f, 'configMapRef', 'name')),
            where,
          ).toContain(configs[0]?.metadata.name);
        }
      }
    }
    expect(configs).toHaveLength(1);
    expect(Object.keys(dict(configs[0]?.data)).sort()).toEqual(['AWS_ENDPOINT_URL_S3', 'AWS_REGION']);
    for (const sa of objects.filter((o) => o.kind === 'ServiceAccount'))
      expect(list(sa.imagePullSecrets), objectId(sa)).toEqual([{ name: 'regcred' }]);
  });
});

describe('the RayCluster', () => {
  it.each(APP_OVERLAYS)(
    '%s: head does no work, memory is capped, workers spread, autoscaling is bounded',
    async (overlay) => {
      const pins = loadPins();
      const objects = await render(overlay);
      const rc = objects.find((o) => o.kind === 'RayCluster');
      expect(at(rc, 'spec', 'rayVersion')).toBe(pins.ray);
      expect(at(rc, 'spec', 'headGroupSpec', 'rayStartParams', 'num-cpus')).toBe('0');
      const groups = [at(rc, 'spec', 'headGroupSpec'), ...list(at(rc, 'spec', 'workerGroupSpecs'))];
      for (const g of groups) {
        expect(Number(at(g, 'rayStartParams', 'object-store-memory'))).toBeGreaterThan(0);
        const c = dict(at(g, 'template', 'spec', 'containers', 0));
        const env = list(c.env).map(dict);
        expect(env.find((e) => e.name === 'RAY_memory_usage_threshold')?.value).toMatch(/^0\.\d+$/);
        // The object store and /dev/shm must fit in the container's memory limit.
        const limit = String(at(c, 'resources', 'limits', 'memory'));
        expect(bytes(limit)).toBeGreaterThan(Number(at(g, 'rayStartParams', 'object-store-memory')));
      }
      for (const w of list(at(rc, 'spec', 'workerGroupSpecs'))) {
        const min = Number(at(w, 'minReplicas'));
        const max = Number(at(w, 'maxReplicas'));
        const replicas = Number(at(w, 'replicas'));
        expect(min).toBeGreaterThanOrEqual(1);
        expect(min <= replicas && replicas <= max, `${overlay}: ${min} <= ${replicas} <= ${max}`).toBe(true);
        expect(at(w, 'template', 'spec', 'affinity', 'podAntiAffinity')).toBeDefined();
        expect(at(w, 'template', 'spec', 'nodeSelector')).toBeDefined();
      }
      const pdbs = objects.filter((o) => o.kind === 'PodDisruptionBudget');
      expect(
        pdbs.find(
          (p) =>
            at(p, 'spec', 'selector', 'matchLabels', 'ray.io/node-type') === 'head' &&
            at(p, 'spec', 'minAvailable') === 1,
        ),
      ).toBeDefined();
      // RayCluster has no scale subresource: a budget by maxUnavailable or percentage fails to sync (SyncFailed).
      const workers = pdbs.find((p) => at(p, 'spec', 'selector', 'matchLabels', 'ray.io/node-type') === 'worker');
      expect(typeof at(workers, 'spec', 'minAvailable'), overlay).toBe('number');
      expect(at(workers, 'spec', 'maxUnavailable'), overlay).toBeUndefined();
      const dashboard = objects.find((o) => o.kind === 'Service' && o.metadata.name === 'ray-dashboard');
      expect(at(dashboard, 'spec', 'ports', 0, 'port')).toBe(8265);
      expect(at(dashboard, 'spec', 'type')).toBe('ClusterIP');
    },
  );

  it('prod sizes: head 2-4 vCPU / 8-16 GiB; workers 4-8 vCPU / 16-32 GiB; dev is smaller', async () => {
    const rc = (await render('apps/wiki-tokenizer/overlays/prod')).find((o) => o.kind === 'RayCluster');
    const head = dict(at(rc, 'spec', 'headGroupSpec', 'template', 'spec', 'containers', 0, 'resources'));
    const worker = dict(at(rc, 'spec', 'workerGroupSpecs', 0, 'template', 'spec', 'containers', 0, 'resources'));
    expect(cpu(at(head, 'requests', 'cpu'))).toBeGreaterThanOrEqual(2);
    expect(cpu(at(head, 'limits', 'cpu'))).toBeLessThanOrEqual(4);
    expect(bytes(String(at(head, 'limits', 'memory')))).toBeGreaterThanOrEqual(8 * 2 ** 30);
    expect(bytes(String(at(head, 'limits', 'memory')))).toBeLessThanOrEqual(16 * 2 ** 30);
    expect(cpu(at(worker, 'requests', 'cpu'))).toBeGreaterThanOrEqual(4);
    expect(cpu(at(worker, 'limits', 'cpu'))).toBeLessThanOrEqual(8);
    expect(bytes(String(at(worker, 'limits', 'memory')))).toBeGreaterThanOrEqual(16 * 2 ** 30);
    expect(bytes(String(at(worker, 'limits', 'memory')))).toBeLessThanOrEqual(32 * 2 ** 30);
    const dev = (await render('apps/wiki-tokenizer/overlays/dev')).find((o) => o.kind === 'RayCluster');
    expect(
      bytes(
        String(
          at(dev, 'spec', 'workerGroupSpecs', 0, 'template', 'spec', 'containers', 0, 'resources', 'limits', 'memory'),
        ),
      ),
    ).toBeLessThan(16 * 2 ** 30);
    expect(at(dev, 'spec', 'workerGroupSpecs', 0, 'maxReplicas')).toBe(1);
  });

  it('Ray ports are reachable only from the namespace and the dashboard from the KubeRay operator', async () => {
    const objects = await render('apps/wiki-tokenizer/overlays/prod');
    const np = objects.find((o) => o.kind === 'NetworkPolicy' && o.metadata.name === 'ray');
    expect(at(np, 'spec', 'podSelector', 'matchLabels', 'ray.io/cluster')).toBe('tokenize-wiki');
    const rules = list(at(np, 'spec', 'ingress')).map(dict);
    expect(rules).toHaveLength(2);
    expect(at(rules[0], 'from', 0)).toEqual({ podSelector: {} });
    expect(at(rules[1], 'from', 0, 'namespaceSelector', 'matchLabels', 'kubernetes.io/metadata.name')).toBe(
      'kuberay-system',
    );
    expect(list(rules[1]?.ports)).toEqual([{ protocol: 'TCP', port: 8265 }]);
  });
});

describe('the pod network', () => {
  it("Flannel's pod network is 10.244.0.0/16 and equals every cluster's kubeadm podSubnet", async () => {
    const cfg = (await render('infrastructure/flannel')).find(
      (o) => o.kind === 'ConfigMap' && o.metadata.name === 'kube-flannel-cfg',
    );
    const net = JSON.parse(String(at(cfg, 'data', 'net-conf.json'))) as { Network: string; Backend: { Type: string } };
    expect(net.Network).toBe('10.244.0.0/16');
    expect(net.Backend.Type).toBe('vxlan');
    for (const cluster of CLUSTERS) {
      const docs = YAML.parseAllDocuments(
        readFileSync(path.join(repoRoot, 'clusters', cluster, 'kubeadm-config.yaml'), 'utf8'),
      ).map((d) => dict(d.toJS()));
      const cc = docs.find((d) => d.kind === 'ClusterConfiguration');
      expect(at(cc, 'networking', 'podSubnet'), `clusters/${cluster}/kubeadm-config.yaml`).toBe(net.Network);
    }
  });

  it("Flannel's CNI config uses a spec version the bundle's flannel CNI plugin supports (<= 0.4.0), which upstream's does too", async () => {
    const cfg = (await render('infrastructure/flannel')).find(
      (o) => o.kind === 'ConfigMap' && o.metadata.name === 'kube-flannel-cfg',
    );
    const cni = JSON.parse(String(at(cfg, 'data', 'cni-conf.json'))) as {
      cniVersion: string;
      plugins: { type: string }[];
    };
    // containernetworking/plugins v0.9.1's flannel plugin (scripts/lib/bundle/go-builds.ts) supports 0.1.0 to 0.4.0.
    expect(['0.3.0', '0.3.1', '0.4.0']).toContain(cni.cniVersion);
    expect(cni.plugins.map((p) => p.type)).toEqual(['flannel', 'portmap']);
  });

  it('local-path is the default StorageClass', async () => {
    const sc = (await render('infrastructure/local-path')).find((o) => o.kind === 'StorageClass');
    expect(sc?.metadata.annotations?.['storageclass.kubernetes.io/is-default-class']).toBe('true');
  });
});

function cpu(v: unknown): number {
  const s = String(v);
  return s.endsWith('m') ? Number(s.slice(0, -1)) / 1000 : Number(s);
}

function bytes(q: string): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(q);
  if (!m) throw new Error(`not a memory quantity: ${q}`);
  const unit = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, M: 1e6, G: 1e9, T: 1e12 }[m[2] ?? ''] ?? 1;
  return Number(m[1]) * unit;
}

describe('the Ray pods', () => {
  const podSpecOf = (g: unknown): Dict => dict(at(g, 'template', 'spec'));
  /** Does a pod of this template get a ServiceAccount token? The pod's own setting wins over its account's. */
  const hasToken = (pod: Dict, objects: K8sObject[]): boolean => {
    if (typeof pod.automountServiceAccountToken === 'boolean') return pod.automountServiceAccountToken;
    const sa = objects.find(
      (o) =>
        o.kind === 'ServiceAccount' &&
        o.metadata.name === (typeof pod.serviceAccountName === 'string' ? pod.serviceAccountName : 'default'),
    );
    if (!sa)
      throw new Error(
        `ServiceAccount ${String(pod.serviceAccountName)} is not rendered: KubeRay would not create it (the head names it)`,
      );
    return sa.automountServiceAccountToken !== false;
  };

  it.each(APP_OVERLAYS)(
    '%s: the head has a token iff autoscaling is on (its autoscaler calls the API); workers never',
    async (overlay) => {
      for (const objects of [await render(overlay), await renderWithComponents(overlay, APP_COMPONENTS)]) {
        const rc = objects.find((o) => o.kind === 'RayCluster');
        const autoscaling = at(rc, 'spec', 'enableInTreeAutoscaling') === true;
        const head = podSpecOf(at(rc, 'spec', 'headGroupSpec'));
        expect(hasToken(head, objects)).toBe(autoscaling);
        for (const g of list(at(rc, 'spec', 'workerGroupSpecs'))) {
          const worker = podSpecOf(g);
          expect(hasToken(worker, objects), `worker group ${String(dict(g).groupName)}`).toBe(false);
          // KubeRay binds its autoscaler Role to the head's account: never share it with the workers.
          expect(worker.serviceAccountName).not.toBe(head.serviceAccountName);
        }
      }
    },
  );

  it('the same check flags a head whose account has no token (what made the head CrashLoop)', async () => {
    const objects = structuredClone(await render('apps/wiki-tokenizer/overlays/prod'));
    const rc = objects.find((o) => o.kind === 'RayCluster');
    const head = podSpecOf(at(rc, 'spec', 'headGroupSpec'));
    const sa = objects.find((o) => o.kind === 'ServiceAccount' && o.metadata.name === head.serviceAccountName);
    if (!sa) throw new Error('no head ServiceAccount');
    sa.automountServiceAccountToken = false;
    expect(hasToken(head, objects)).toBe(false);
  });

  it.each(APP_OVERLAYS)(
    "%s: a new template (image, S3 endpoint) replaces every Ray pod; the GCS port has KubeRay's name",
    async (overlay) => {
      const objects = await render(overlay);
      const rc = objects.find((o) => o.kind === 'RayCluster');
      expect(at(rc, 'spec', 'upgradeStrategy', 'type')).toBe('Recreate');
      const ports = list(at(rc, 'spec', 'headGroupSpec', 'template', 'spec', 'containers', 0, 'ports')).map(dict);
      expect(ports.find((p) => p.containerPort === 6379)?.name).toBe('gcs-server');
      // The endpoint ConfigMap's name carries a hash of its data, so a new endpoint is a new template.
      const config = objects.find(
        (o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('tokenize-wiki-s3-config'),
      );
      expect(config?.metadata.name).toMatch(/^tokenize-wiki-s3-config-[a-z0-9]{10}$/);
      for (const g of [at(rc, 'spec', 'headGroupSpec'), ...list(at(rc, 'spec', 'workerGroupSpecs'))]) {
        const refs = list(at(g, 'template', 'spec', 'containers', 0, 'envFrom'))
          .map((f) => at(f, 'configMapRef', 'name'))
          .filter(Boolean);
        expect(refs).toEqual([config?.metadata.name]);
      }
    },
  );

  it.each(APP_OVERLAYS)(
    '%s: images are immutable tags (a commit or a version), as scripts/build-images.mts writes them',
    async (overlay) => {
      for (const o of await render(overlay)) {
        for (const { where, image } of imagesOf(o)) {
          if (!/\/tokenize-wiki(-submitter)?:/.test(image)) continue;
          const tag = image.split(':').at(-1) ?? '';
          expect(isImmutableTag(tag), `${overlay}: ${where}: ${image}`).toBe(true);
        }
      }
      expect(isImmutableTag('prod')).toBe(false);
      expect(isImmutableTag('dev')).toBe(false);
    },
  );
});

describe('storage out of the box', () => {
  it.each(APP_OVERLAYS)('%s: the S3 endpoint is the in-cluster object store the cluster syncs', async (overlay) => {
    const config = (await render(overlay)).find(
      (o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('tokenize-wiki-s3-config'),
    );
    const endpoint = String(at(config, 'data', 'AWS_ENDPOINT_URL_S3'));
    const cluster = overlay.split('/').at(-1) ?? '';
    const apps = (await render(`clusters/${cluster}`)).filter((o) => o.kind === 'Application');
    const storeApp = apps.find((a) => at(a, 'spec', 'destination', 'namespace') === 'object-store');
    expect(storeApp, `clusters/${cluster} syncs no object store`).toBeDefined();
    const store = await render(String(at(storeApp, 'spec', 'source', 'path')));
    const s3 = store.find(
      (o) => o.kind === 'Service' && list(at(o, 'spec', 'ports')).some((p) => dict(p).name === 's3'),
    );
    const port = list(at(s3, 'spec', 'ports'))
      .map(dict)
      .find((p) => p.name === 's3')?.port;
    expect(endpoint).toBe(`http://${s3?.metadata.name ?? '?'}.${s3?.metadata.namespace ?? '?'}.svc:${String(port)}`);
  });

  it('dev runs a single-replica store: one pod, one master, no replica on another node', async () => {
    const app = (await render('clusters/dev')).find(
      (o) => o.kind === 'Application' && o.metadata.name === 'object-store',
    );
    const store = await render(String(at(app, 'spec', 'source', 'path')));
    const sts = store.find((o) => o.kind === 'StatefulSet');
    expect(at(sts, 'spec', 'replicas')).toBe(1);
    const topology = dict(
      store.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('seaweedfs-topology'))?.data,
    );
    expect(String(topology.MASTER_PEERS).split(',')).toHaveLength(1);
    expect(topology.DEFAULT_REPLICATION).toBe('000');
    const prodApp = (await render('clusters/prod')).find(
      (o) => o.kind === 'Application' && o.metadata.name === 'object-store',
    );
    expect(at(prodApp, 'spec', 'source', 'path')).toBe('infrastructure/object-store');
  });

  it("dev stages its run's dump with an in-cluster Job running `tokenize-wiki stage`", async () => {
    const objects = await render('apps/wiki-tokenizer/overlays/dev');
    const job = objects.find((o) => o.kind === 'Job' && o.metadata.name === 'stage-dump');
    const pod = dict(at(job, 'spec', 'template', 'spec'));
    const c = dict(list(pod.containers)[0]);
    expect(list(c.args)).toEqual(['stage', '--from', '$(DUMP_FROM)', '--to', '$(DUMP_TO)']);
    const cmName = list(c.envFrom)
      .map((f) => String(at(f, 'configMapRef', 'name')))
      .find((n) => n.startsWith('stage-dump'));
    const values = dict(objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === cmName)?.data);
    expect(String(values.DUMP_FROM)).toMatch(/^https:\/\/dumps\.wikimedia\.org\//);
    expect(String(values.TOKENIZE_WIKI_USER_AGENT)).toMatch(/\(.+\)/);
    // It stages the dump a dev run file reads.
    const runs = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('tokenize-wiki-runs'));
    const dumps = Object.values(dict(runs?.data)).flatMap((text) =>
      list(dict(YAML.parse(String(text))).dumps).map(String),
    );
    expect(dumps).toContain(values.DUMP_TO);
    // The buckets exist before it writes, and it can be replaced when the dump changes.
    expect(list(pod.initContainers).map((x) => list(dict(x).args).slice(0, 2).join(' '))).toEqual(['buckets ensure']);
    expect(job?.metadata.annotations?.['argocd.argoproj.io/sync-options']).toBe('Force=true,Replace=true');
  });
});

describe('sizes and nodes', () => {
  const kubeletConfig = (cluster: string): Dict =>
    YAML.parseAllDocuments(readFileSync(path.join(repoRoot, 'clusters', cluster, 'kubeadm-config.yaml'), 'utf8'))
      .map((d) => dict(d.toJS()))
      .find((d) => d.kind === 'KubeletConfiguration') ?? {};

  it.each(CLUSTERS)(
    'clusters/%s: kubelet keeps CPU and memory back for the system and itself, and evicts before the node runs dry',
    (cluster) => {
      const k = kubeletConfig(cluster);
      for (const key of ['systemReserved', 'kubeReserved']) {
        expect(quantity(String(at(k, key, 'cpu'))), key).toBeGreaterThan(0);
        expect(quantity(String(at(k, key, 'memory'))), key).toBeGreaterThan(0);
      }
      expect(at(k, 'evictionHard', 'memory.available')).toBeDefined();
    },
  );

  /** A node's allocatable by kubelet's rule: capacity minus both reservations and the hard eviction threshold. */
  const allocatable = (cpu: number, memoryGiB: number, cluster = 'prod'): Resources => {
    const k = kubeletConfig(cluster);
    const reserved = (r: 'cpu' | 'memory') =>
      quantity(String(at(k, 'systemReserved', r))) + quantity(String(at(k, 'kubeReserved', r)));
    return {
      cpu: cpu - reserved('cpu'),
      memory: memoryGiB * 2 ** 30 - reserved('memory') - quantity(String(at(k, 'evictionHard', 'memory.available'))),
    };
  };

  /** What else every worker node runs: the object store's pod (prod's three-node store) and Flannel. */
  async function neighbours(): Promise<Resources> {
    const pods = [...(await render('infrastructure/object-store')), ...(await render('infrastructure/flannel'))]
      .filter((o) => o.kind === 'StatefulSet' || o.kind === 'DaemonSet')
      .map((o) => podRequests(list(at(o, 'spec', 'template', 'spec', 'containers')).map(dict)));
    return pods.reduce((a, b) => ({ cpu: a.cpu + b.cpu, memory: a.memory + b.memory }), { cpu: 0, memory: 0 });
  }

  const workerFits = async (objects: K8sObject[], node: Resources): Promise<string[]> => {
    const rc = objects.find((o) => o.kind === 'RayCluster') as RayClusterLike | undefined;
    if (!rc) throw new Error('no RayCluster');
    const others = await neighbours();
    const left: Resources = { cpu: node.cpu - others.cpu, memory: node.memory - others.memory };
    return fitProblems(rayPods(rc).slice(1), [{ name: 'worker', allocatable: left, taints: [] }], 'too big');
  };

  it('prod: a worker fits an 8 vCPU / 32 GiB node next to the object store and Flannel, not a 4 vCPU / 16 GiB one', async () => {
    const objects = await render('apps/wiki-tokenizer/overlays/prod');
    expect(await workerFits(objects, allocatable(8, 32))).toEqual([]);
    expect(await workerFits(objects, allocatable(4, 16))).not.toEqual([]);
  });

  it('components/nodes-4cpu-16gib: a worker fits a 4 vCPU / 16 GiB node next to the object store and Flannel', async () => {
    const objects = await renderWithComponents('apps/wiki-tokenizer/overlays/prod', [
      'apps/wiki-tokenizer/components/nodes-4cpu-16gib',
    ]);
    expect(await workerFits(objects, allocatable(4, 16))).toEqual([]);
    const rc = objects.find((o) => o.kind === 'RayCluster');
    const limits = dict(
      at(rc, 'spec', 'workerGroupSpecs', 0, 'template', 'spec', 'containers', 0, 'resources', 'limits'),
    );
    // Ray counts the CPU limit: whole CPUs, at least one job of a run file's usual cpus_per_job.
    expect(Number(limits.cpu)).toBe(3);
  });
});

describe('what the tree leaves to the user, said where they read it', () => {
  const gitopsDoc = (): string => readFileSync(path.join(repoRoot, 'docs/gitops.md'), 'utf8');

  it('the dashboard Ingress: the class and the controller namespace it assumes are the ones the docs name', async () => {
    const objects = await renderWithComponents('apps/wiki-tokenizer/overlays/prod', [
      'apps/wiki-tokenizer/components/dashboard-ingress',
    ]);
    const ingress = objects.find((o) => o.kind === 'Ingress');
    const np = objects.find((o) => o.kind === 'NetworkPolicy' && o.metadata.name === 'ray-dashboard-from-ingress');
    const cls = String(at(ingress, 'spec', 'ingressClassName'));
    const ns = String(
      at(np, 'spec', 'ingress', 0, 'from', 0, 'namespaceSelector', 'matchLabels', 'kubernetes.io/metadata.name'),
    );
    expect(gitopsDoc()).toContain(`\`ingressClassName: ${cls}\``);
    expect(gitopsDoc()).toContain(`namespace \`${ns}\``);
  });

  it('the RayJob health check: submitter RayJobs carry no Argo CD tracking, and the docs say so', () => {
    const job = rayJobObject(
      { id: 'r-1-1', runId: 'r', batch: 1, tasks: ['t'], cpus: 1, entrypoint: 'true' },
      { namespace: 'tokenize-wiki', rayCluster: 'tokenize-wiki' },
    );
    const meta = dict(job.metadata);
    expect(Object.keys(dict(meta.labels))).not.toContain('app.kubernetes.io/instance');
    expect(Object.keys(dict(meta.annotations))).not.toContain('argocd.argoproj.io/tracking-id');
    expect(gitopsDoc()).toContain('RayJobs the submitter creates are not part of any Argo CD app');
  });

  it("monitoring: kube-prometheus-stack's release label is set on every monitor and rule, in one file", async () => {
    const objects = await render('infrastructure/monitoring');
    const kinds = ['PodMonitor', 'ServiceMonitor', 'PrometheusRule'];
    const monitors = objects.filter((o) => kinds.includes(o.kind));
    expect([...new Set(monitors.map((o) => o.kind))].sort()).toEqual([...kinds].sort());
    const values = new Set(monitors.map((o) => o.metadata.labels?.release));
    expect(values.size).toBe(1);
    const value = [...values][0] ?? '';
    expect(value).not.toBe('');
    const files = readdirSync(path.join(repoRoot, 'infrastructure/monitoring')).filter((f) => /\.ya?ml$/.test(f));
    expect(
      files.filter((f) =>
        readFileSync(path.join(repoRoot, 'infrastructure/monitoring', f), 'utf8').includes(`release: ${value}`),
      ),
    ).toEqual(['kustomization.yaml']);
    expect(readFileSync(path.join(repoRoot, 'docs/observability.md'), 'utf8')).toContain(
      '`release: <your Helm release>`',
    );
  });
});
