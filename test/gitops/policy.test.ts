// Policies over the rendered output: what every object of ours must look like, and the settings
// the cluster's behaviour depends on (the submitter CronJob, the run files, RBAC, the RayCluster).
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import YAML from 'yaml';
import { describe, expect, it } from 'vitest';
import { APP_COMPONENTS, APP_OVERLAYS, listKustomizations, loadPins, objectId, render, renderWithComponents, repoRoot, type K8sObject } from './gitops.js';

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
  for (const k of listKustomizations().filter((x) => x.kind === 'Kustomization' && !x.dir.endsWith('/base'))) out.push({ label: k.dir, objects: await render(k.dir) });
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
        ...list(at(o, 'spec', 'workerGroupSpecs')).map((g, i) => ({ where: `${id} workers[${i}]`, spec: dict(at(g, 'template', 'spec')) })),
      ];
    default:
      return [];
  }
}

function containersOf(p: PodSpecAt): { where: string; c: Dict }[] {
  return [...list(p.spec.initContainers), ...list(p.spec.containers)].map((c) => ({ where: `${p.where} container ${String(dict(c).name)}`, c: dict(c) }));
}

/** Images named anywhere: containers, and pod templates kept as text in ConfigMaps (local-path's helper pod). */
function imagesOf(o: K8sObject): { where: string; image: string }[] {
  const found: { where: string; image: string }[] = [];
  for (const p of podSpecs(o)) for (const { where, c } of containersOf(p)) found.push({ where, image: String(c.image) });
  if (o.kind === 'RayCluster' && at(o, 'spec', 'autoscalerOptions', 'image') !== undefined) {
    found.push({ where: `${objectId(o)} autoscaler`, image: String(at(o, 'spec', 'autoscalerOptions', 'image')) });
  }
  if (o.kind === 'ConfigMap') {
    for (const [key, text] of Object.entries(dict(o.data))) {
      for (const m of String(text).matchAll(/^\s*image:\s*["']?([^\s"']+)/gm)) found.push({ where: `${objectId(o)} data.${key}`, image: m[1] ?? '' });
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
          if (at(o, 'spec', 'autoscalerOptions', 'resources', 'limits', 'memory') === undefined) problems.push(`${r.label}: ${objectId(o)}: autoscaler sidecar has no resources`);
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
          if (pod.runAsNonRoot !== true) problems.push(`${r.label}: ${p.where}: securityContext.runAsNonRoot is not true`);
          if (at(pod, 'seccompProfile', 'type') !== 'RuntimeDefault') problems.push(`${r.label}: ${p.where}: seccompProfile is not RuntimeDefault`);
          if (p.spec.hostNetwork === true || p.spec.hostPID === true) problems.push(`${r.label}: ${p.where}: uses the host's namespaces`);
          for (const { where, c } of containersOf(p)) {
            const sc = dict(c.securityContext);
            if (sc.allowPrivilegeEscalation !== false) problems.push(`${r.label}: ${where}: allowPrivilegeEscalation is not false`);
            if (sc.privileged === true) problems.push(`${r.label}: ${where}: privileged`);
            if (JSON.stringify(at(sc, 'capabilities', 'drop')) !== '["ALL"]') problems.push(`${r.label}: ${where}: capabilities.drop is not [ALL]`);
            if (list(at(sc, 'capabilities', 'add')).length > 0) problems.push(`${r.label}: ${where}: adds capabilities`);
            if (typeof sc.readOnlyRootFilesystem !== 'boolean') problems.push(`${r.label}: ${where}: readOnlyRootFilesystem not decided`);
          }
        }
        if (o.kind === 'RayCluster') {
          const sc = dict(at(o, 'spec', 'autoscalerOptions', 'securityContext'));
          if (sc.allowPrivilegeEscalation !== false || sc.runAsNonRoot !== true) problems.push(`${r.label}: ${objectId(o)}: autoscaler securityContext`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('the submitter, which needs no writable root, has a read-only root filesystem', async () => {
    for (const r of await ourRenders()) {
      for (const o of r.objects.filter((x) => x.metadata.labels?.['app.kubernetes.io/component'] === 'submitter')) {
        for (const p of podSpecs(o)) for (const { where, c } of containersOf(p)) expect(at(c, 'securityContext', 'readOnlyRootFilesystem'), `${r.label}: ${where}`).toBe(true);
      }
    }
  });

  it('every object carries the app labels', async () => {
    const problems: string[] = [];
    for (const r of await ourRenders()) {
      for (const o of r.objects) {
        const labels = o.metadata.labels ?? {};
        for (const key of ['tokenize-wiki/app', 'app.kubernetes.io/name', 'app.kubernetes.io/part-of', 'app.kubernetes.io/component']) {
          if (!labels[key]) problems.push(`${r.label}: ${objectId(o)}: no label ${key}`);
        }
        for (const p of podSpecs(o)) {
          // Pod templates too: Services, NetworkPolicies and PDBs select on these.
          const tmpl = o.kind === 'CronJob' ? at(o, 'spec', 'jobTemplate', 'spec', 'template') : o.kind === 'RayCluster' ? undefined : at(o, 'spec', 'template');
          if (tmpl !== undefined && !dict(at(tmpl, 'metadata', 'labels'))['app.kubernetes.io/component']) problems.push(`${r.label}: ${p.where}: pod template has no component label`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('everything lives in the tokenize-wiki namespace', async () => {
    for (const r of await ourRenders()) {
      for (const o of r.objects.filter((x) => x.kind !== 'Namespace')) expect(o.metadata.namespace, `${r.label}: ${objectId(o)}`).toBe('tokenize-wiki');
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
          if (!image.includes('@sha256:') && (!tag || tag === 'latest')) problems.push(`${r.label}: ${where}: image ${image} has no pinned tag`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('no Secret with data is rendered, and no file of the tree defines one', async () => {
    for (const r of await everyRender()) {
      for (const o of r.objects.filter((x) => x.kind === 'Secret')) {
        expect(Object.keys(dict(o.data)).length + Object.keys(dict(o.stringData)).length, `${r.label}: ${objectId(o)} carries data`).toBe(0);
      }
    }
    const ours: string[] = [];
    const walk = (rel: string): void => {
      for (const e of readdirSync(path.join(repoRoot, rel), { withFileTypes: true })) {
        const p = path.posix.join(rel, e.name);
        if (e.isDirectory()) walk(p);
        else if (/\.ya?ml$/.test(e.name) && /^kind:\s*Secret\s*$/m.test(readFileSync(path.join(repoRoot, p), 'utf8'))) ours.push(p);
      }
    };
    for (const top of ['argocd', 'clusters', 'infrastructure', 'apps']) walk(top);
    expect(ours).toEqual([]);
  });

  it('every object of the infrastructure and Argo CD kustomizations is labelled with its app', async () => {
    for (const dir of ['argocd/install', 'argocd/projects', 'clusters/prod', 'clusters/dev', 'infrastructure/flannel', 'infrastructure/local-path', 'infrastructure/kuberay']) {
      for (const o of await render(dir)) expect(o.metadata.labels?.['tokenize-wiki/app'], `${dir}: ${objectId(o)}`).toBeTruthy();
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

  it.each(APP_OVERLAYS)('%s: the CronJob reconciles the whole mounted runs ConfigMap, keeping its budget inside its deadline and period', async (overlay) => {
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
    const mount = list(container.volumeMounts).map(dict).find((m) => m.mountPath === runPath);
    expect(mount, `--run ${runPath} is not a mounted folder`).toBeDefined();
    expect(mount?.mountPath).toBe('/etc/tokenize-wiki/runs');
    const budget = Number(args[args.indexOf('--budget-seconds') + 1]);
    const deadline = Number(at(cron, 'spec', 'jobTemplate', 'spec', 'activeDeadlineSeconds'));
    expect(budget).toBeGreaterThan(0);
    expect(budget + 60).toBeLessThanOrEqual(deadline);
    expect(String(at(cron, 'spec', 'schedule'))).toBe('*/5 * * * *');
    expect(deadline).toBeLessThan(300);
    expect(at(cron, 'spec', 'concurrencyPolicy')).toBe('Forbid');
    const volume = list(pod.volumes).map(dict).find((v) => v.name === mount?.name);
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
      for (const uri of [run.output_prefix, run.manifest_uri, ...list(run.dumps)]) expect(String(uri), `${file}`).toMatch(/^s3:\/\//);
      expect(at(run, 'backend', 'kind'), `${file}: backend.kind`).toBe('kuberay');
      expect(at(run, 'backend', 'ray_cluster')).toBe('tokenize-wiki');
      expect(at(run, 'backend', 'namespace')).toBe('tokenize-wiki');
    }
  });

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
    const objects = await renderWithComponents('apps/wiki-tokenizer/overlays/prod', ['apps/wiki-tokenizer/components/submitter-daemon']);
    expect(at(objects.find((o) => o.kind === 'CronJob'), 'spec', 'suspend')).toBe(true);
    const deploy = objects.find((o) => o.kind === 'Deployment');
    const c = dict(list(at(deploy, 'spec', 'template', 'spec', 'containers'))[0]);
    expect(list(c.args)).toContain('--schedule');
    expect(at(c, 'ports', 0, 'containerPort')).toBe(9464);
    expect(at(c, 'livenessProbe', 'httpGet', 'path')).toBe('/healthz');
    const volume = list(at(deploy, 'spec', 'template', 'spec', 'volumes')).map(dict).find((v) => v.name === 'runs');
    expect(String(at(volume, 'configMap', 'name'))).toMatch(/^tokenize-wiki-runs-/);
    expect(objects.find((o) => o.kind === 'Service' && o.metadata.name === 'submitter-metrics')).toBeDefined();
  });

  it('RBAC is least privilege: RayJobs, RayClusters read-only, Leases; no Secrets, no Pods, nothing cluster-wide', async () => {
    const objects = await render('apps/wiki-tokenizer/overlays/prod');
    expect(objects.filter((o) => o.kind === 'ClusterRole' || o.kind === 'ClusterRoleBinding')).toEqual([]);
    const role = objects.find((o) => o.kind === 'Role' && o.metadata.name === 'submitter');
    const rules = list(role?.rules).map((r) => {
      const d = dict(r);
      return `${list(d.apiGroups).join(',')}|${list(d.resources).join(',')}|${list(d.verbs).slice().sort().join(',')}`;
    });
    expect(rules.sort()).toEqual(
      [
        'coordination.k8s.io|leases|create,get,update',
        'ray.io|rayclusters|get,list,watch',
        'ray.io|rayjobs|create,delete,get,list,patch,watch',
      ].sort(),
    );
    const binding = objects.find((o) => o.kind === 'RoleBinding' && o.metadata.name === 'submitter');
    expect(at(binding, 'roleRef', 'name')).toBe('submitter');
    expect(list(binding?.subjects).map((s) => `${String(dict(s).kind)}/${String(dict(s).name)}`)).toEqual(['ServiceAccount/submitter']);
    const raySa = objects.find((o) => o.kind === 'ServiceAccount' && o.metadata.name === 'ray');
    expect(raySa?.automountServiceAccountToken).toBe(false);
  });

  it('S3 credentials come from the hand-made Secret tokenize-wiki-s3; pulls may use regcred', async () => {
    const objects = await render('apps/wiki-tokenizer/overlays/prod');
    for (const o of objects) {
      for (const p of podSpecs(o)) {
        for (const { where, c } of containersOf(p)) {
          const from = list(c.envFrom).map(dict);
          expect(from.map((f) => at(f, 'secretRef', 'name')), where).toContain('tokenize-wiki-s3');
          expect(from.map((f) => at(f, 'configMapRef', 'name')), where).toContain('tokenize-wiki-s3-config');
        }
      }
    }
    const config = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'tokenize-wiki-s3-config');
    expect(Object.keys(dict(config?.data)).sort()).toEqual(['AWS_ENDPOINT_URL_S3', 'AWS_REGION']);
    for (const sa of objects.filter((o) => o.kind === 'ServiceAccount')) expect(list(sa.imagePullSecrets), objectId(sa)).toEqual([{ name: 'regcred' }]);
  });
});

describe('the RayCluster', () => {
  it.each(APP_OVERLAYS)('%s: head does no work, memory is capped, workers spread, autoscaling is bounded', async (overlay) => {
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
    expect(pdbs.find((p) => at(p, 'spec', 'selector', 'matchLabels', 'ray.io/node-type') === 'head' && at(p, 'spec', 'minAvailable') === 1)).toBeDefined();
    expect(pdbs.find((p) => at(p, 'spec', 'selector', 'matchLabels', 'ray.io/node-type') === 'worker')).toBeDefined();
    const dashboard = objects.find((o) => o.kind === 'Service' && o.metadata.name === 'ray-dashboard');
    expect(at(dashboard, 'spec', 'ports', 0, 'port')).toBe(8265);
    expect(at(dashboard, 'spec', 'type')).toBe('ClusterIP');
  });

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
    expect(bytes(String(at(dev, 'spec', 'workerGroupSpecs', 0, 'template', 'spec', 'containers', 0, 'resources', 'limits', 'memory')))).toBeLessThan(16 * 2 ** 30);
    expect(at(dev, 'spec', 'workerGroupSpecs', 0, 'maxReplicas')).toBe(1);
  });

  it('Ray ports are reachable only from the namespace and the dashboard from the KubeRay operator', async () => {
    const objects = await render('apps/wiki-tokenizer/overlays/prod');
    const np = objects.find((o) => o.kind === 'NetworkPolicy' && o.metadata.name === 'ray');
    expect(at(np, 'spec', 'podSelector', 'matchLabels', 'ray.io/cluster')).toBe('tokenize-wiki');
    const rules = list(at(np, 'spec', 'ingress')).map(dict);
    expect(rules).toHaveLength(2);
    expect(at(rules[0], 'from', 0)).toEqual({ podSelector: {} });
    expect(at(rules[1], 'from', 0, 'namespaceSelector', 'matchLabels', 'kubernetes.io/metadata.name')).toBe('kuberay-system');
    expect(list(rules[1]?.ports)).toEqual([{ protocol: 'TCP', port: 8265 }]);
  });
});

describe('the pod network', () => {
  it("Flannel's pod network is 10.244.0.0/16 and equals every cluster's kubeadm podSubnet", async () => {
    const cfg = (await render('infrastructure/flannel')).find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'kube-flannel-cfg');
    const net = JSON.parse(String(at(cfg, 'data', 'net-conf.json'))) as { Network: string; Backend: { Type: string } };
    expect(net.Network).toBe('10.244.0.0/16');
    expect(net.Backend.Type).toBe('vxlan');
    for (const cluster of ['prod', 'dev']) {
      const docs = YAML.parseAllDocuments(readFileSync(path.join(repoRoot, 'clusters', cluster, 'kubeadm-config.yaml'), 'utf8')).map((d) => dict(d.toJS()));
      const cc = docs.find((d) => d.kind === 'ClusterConfiguration');
      expect(at(cc, 'networking', 'podSubnet'), `clusters/${cluster}/kubeadm-config.yaml`).toBe(net.Network);
    }
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
