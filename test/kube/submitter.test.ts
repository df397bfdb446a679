// The submitter against a real API server, authenticated as its ServiceAccount with the Role rendered
// from apps/wiki-tokenizer:
// - RBAC proof: it can do what the submitter does (RayJobs, a Lease) in its namespace and nothing
//   more: no Secrets, no Pods, no other namespace. Checked with SelfSubjectAccessReview (`kubectl
//   auth can-i`) and by acting as the ServiceAccount.
// - The kuberay job backend and the Kubernetes Lease from src/runs, with the test playing the
//   KubeRay operator by patching RayJob status.
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeRayBackend, type JobSpec } from '../../src/runs/backends/index.js';
import { runTasksEntrypoint } from '../../src/runs/entrypoints.js';
import { KubeLease } from '../../src/runs/lease.js';
import { jobId } from '../../src/runs/names.js';
import { decide, type Limits } from '../../src/runs/decide.js';
import { fetchCrds, installCrds } from './crds.js';
import { kubernetesVersion, startKube, type KubeCluster } from './harness.js';
import { render, asList, type K8sObject } from './overlays.js';

const APP = 'apps/wiki-tokenizer/base';
const OTHER_NS = 'tw-rbac-other';

interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  verbs?: string[];
}

let cluster: KubeCluster;
let ns = '';
let serviceAccount = '';
let submitter = ''; // kubeconfig of the ServiceAccount
// as src/runs/lease.ts names it: tokenize-wiki-submit-<run_id>
let leaseName = 'tokenize-wiki-submit-rbac-proof';

function rulesOf(o: K8sObject): PolicyRule[] {
  return Array.isArray(o.rules) ? (o.rules as PolicyRule[]) : [];
}

beforeAll(async () => {
  cluster = await startKube({ log: (l) => console.log(l) });
  await installCrds(
    cluster.kubectl,
    (await fetchCrds()).filter((d) => d.source === 'kuberay'),
  );

  const { objects } = await render(cluster.binaries.kubectl, APP);
  const roles = objects.filter((o) => o.kind === 'Role' && rulesOf(o).some((r) => r.resources?.includes('rayjobs')));
  if (roles.length !== 1) throw new Error(`${APP}: expected one Role granting rayjobs, found ${roles.length}`);
  const role = roles[0]!;
  ns = role.metadata.namespace ?? '';
  if (!ns) throw new Error(`${APP}: Role ${role.metadata.name ?? ''} has no namespace`);
  const binding = objects.find(
    (o) =>
      o.kind === 'RoleBinding' &&
      (o.roleRef as { kind?: string; name?: string } | undefined)?.name === role.metadata.name,
  );
  const subject = ((binding?.subjects ?? []) as { kind?: string; name?: string }[]).find(
    (s) => s.kind === 'ServiceAccount',
  );
  if (!subject?.name)
    throw new Error(`${APP}: no RoleBinding binds Role ${role.metadata.name ?? ''} to a ServiceAccount`);
  serviceAccount = subject.name;
  const leaseRule = rulesOf(role).find((r) => r.resources?.includes('leases'));
  if (leaseRule?.resourceNames?.[0]) leaseName = leaseRule.resourceNames[0];

  // Only what RBAC needs is applied for real: namespaces, ServiceAccounts and RBAC objects.
  const wanted = new Set(['Namespace', 'ServiceAccount', 'Role', 'RoleBinding', 'ClusterRole', 'ClusterRoleBinding']);
  const rbac = objects.filter((o) => wanted.has(o.kind));
  for (const n of [ns, OTHER_NS]) {
    const r = await cluster.kubectl(['create', 'namespace', n]);
    if (r.code !== 0 && !r.stderr.includes('AlreadyExists')) throw new Error(r.stderr);
  }
  const applied = await cluster.kubectl(['apply', '--server-side', '--field-manager=tokenize-wiki-test', '-f', '-'], {
    input: asList(rbac),
  });
  if (applied.code !== 0) throw new Error(`applying ${APP} RBAC: ${applied.stderr.trim()}`);
  submitter = await cluster.serviceAccountKubeconfig(ns, serviceAccount);
}, 60 * 60_000); // a first run builds kube-apiserver, kubectl and etcd from source

afterAll(async () => {
  await cluster?.stop();
});

/** SelfSubjectAccessReview as the submitter; `resource` may be `plural[.group][/name][#subresource]`. */
async function canI(verb: string, resource: string, namespace: string | undefined): Promise<boolean> {
  const where = namespace ? ['-n', namespace] : ['--all-namespaces'];
  const [res, sub] = resource.split('#') as [string, string | undefined];
  const subresource = sub ? [`--subresource=${sub}`] : [];
  const r = await cluster.kubectl(['auth', 'can-i', verb, res, ...subresource, ...where], { kubeconfig: submitter });
  // can-i exits 0 for yes, 1 for no; anything else is a harness problem
  if (r.code > 1 || !/^(yes|no)/.test(r.stdout.trim())) throw new Error(`can-i ${verb} ${resource}: ${r.stderr}`);
  return r.code === 0;
}

const asSubmitter = (args: string[], input?: string) => cluster.kubectl(args, { kubeconfig: submitter, input });

describe('the harness', () => {
  it('serves the pinned Kubernetes version', async () => {
    const r = await cluster.kubectl(['version', '-o', 'json']);
    const v = JSON.parse(r.stdout) as {
      serverVersion?: { gitVersion?: string };
      clientVersion?: { gitVersion?: string };
    };
    const pinned = `v${await kubernetesVersion()}`;
    expect(v.serverVersion?.gitVersion).toBe(pinned);
    expect(v.clientVersion?.gitVersion).toBe(pinned);
  });

  it('authenticates the submitter as its ServiceAccount', async () => {
    const r = await asSubmitter(['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}']);
    expect(r.stdout).toBe(`system:serviceaccount:${ns}:${serviceAccount}`);
  });
});

describe(`RBAC from ${APP}`, () => {
  // Exactly what src/runs/backends/kuberay.ts and src/runs/lease.ts call.
  const allowed: [string, string][] = [
    ...['create', 'get', 'list', 'delete'].map((v): [string, string] => [v, 'rayjobs.ray.io']),
    ['create', 'leases.coordination.k8s.io'],
  ];
  it.each(allowed)('lets the submitter %s %s in its namespace', async (verb, resource) => {
    expect(await canI(verb, resource, ns)).toBe(true);
  });

  it.each(['get', 'update'])('lets the submitter %s its Lease', async (verb) => {
    expect(await canI(verb, `leases.coordination.k8s.io/${leaseName}`, ns)).toBe(true);
  });

  const denied: [string, string, string | undefined][] = [
    ['get', 'secrets', ns],
    ['list', 'secrets', ns],
    ['watch', 'secrets', ns],
    ['create', 'pods', ns],
    ['create', 'pods#exec', ns],
    ['create', 'rayjobs.ray.io', OTHER_NS],
    ['list', 'rayjobs.ray.io', OTHER_NS],
    ['list', 'rayjobs.ray.io', undefined],
    ['get', 'secrets', OTHER_NS],
    ['create', 'leases.coordination.k8s.io', OTHER_NS],
    ['create', 'roles.rbac.authorization.k8s.io', ns],
    ['create', 'rolebindings.rbac.authorization.k8s.io', ns],
    ['watch', 'rayjobs.ray.io', ns],
    ['patch', 'rayjobs.ray.io', ns],
    ['update', 'rayjobs.ray.io', ns],
    ['get', 'rayclusters.ray.io', ns],
    ['list', 'rayclusters.ray.io', ns],
    ['create', 'rayclusters.ray.io', ns],
    ['delete', 'rayclusters.ray.io', ns],
    ['update', 'rayjobs.ray.io#status', ns],
    ['patch', 'rayjobs.ray.io#status', ns],
    ['*', '*', ns],
  ];
  it.each(denied)('denies the submitter %s %s in %s', async (verb, resource, namespace) => {
    expect(await canI(verb, resource, namespace)).toBe(false);
  });
});

describe('acting as the submitter', () => {
  const rayJob = (name: string) => `apiVersion: ray.io/v1
kind: RayJob
metadata:
  name: ${name}
  namespace: ${ns}
  labels:
    tokenize-wiki/run: rbac-proof
spec:
  entrypoint: tokenize-wiki run-tasks --manifest-uri s3://bucket/run/manifest.json --output-prefix s3://bucket/run
  clusterSelector:
    ray.io/cluster: wiki-tokenizer
`;

  it('creates, lists by label and deletes a RayJob, and may not change one', async () => {
    const created = await asSubmitter(['create', '-f', '-'], rayJob('rbac-proof-1'));
    expect(created.stderr).toBe('');
    const listed = await asSubmitter([
      'get',
      'rayjobs.ray.io',
      '-n',
      ns,
      '-l',
      'tokenize-wiki/run=rbac-proof',
      '-o',
      'name',
    ]);
    expect(listed.stdout.trim()).toBe('rayjob.ray.io/rbac-proof-1');
    const patched = await asSubmitter(['label', 'rayjobs.ray.io/rbac-proof-1', '-n', ns, 'tokenize-wiki/attempt=2']);
    expect(patched.stderr).toMatch(/forbidden/i);
    const deleted = await asSubmitter(['delete', 'rayjobs.ray.io/rbac-proof-1', '-n', ns, '--wait=false']);
    expect(deleted.stderr).toBe('');
  });

  it('takes and renews its Lease', async () => {
    const lease = (holder: string) => `apiVersion: coordination.k8s.io/v1
kind: Lease
metadata:
  name: ${leaseName}
  namespace: ${ns}
spec:
  holderIdentity: ${holder}
  leaseDurationSeconds: 60
`;
    const taken = await asSubmitter(['create', '-f', '-'], lease('submitter-a'));
    expect(taken.stderr).toBe('');
    const renewed = await asSubmitter(['replace', '-f', '-'], lease('submitter-a'));
    expect(renewed.stderr).toBe('');
    const read = await asSubmitter([
      'get',
      `leases.coordination.k8s.io/${leaseName}`,
      '-n',
      ns,
      '-o',
      'jsonpath={.spec.holderIdentity}',
    ]);
    expect(read.stdout).toBe('submitter-a');
  });

  it('is forbidden to read Secrets, create Pods or touch another namespace', async () => {
    await cluster.kubectl(['create', 'secret', 'generic', 'object-store', '-n', ns, '--from-literal=key=value']);
    const attempts: string[][] = [
      ['get', 'secret', 'object-store', '-n', ns],
      ['run', 'sneaky', '--image=busybox', '-n', ns, '--restart=Never'],
      ['get', 'rayjobs.ray.io', '-n', OTHER_NS],
    ];
    for (const args of attempts) {
      const r = await asSubmitter(args);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.stderr, args.join(' ')).toMatch(/Forbidden|forbidden/);
    }
    const other = await asSubmitter(
      ['create', '-f', '-'],
      rayJob('rbac-proof-2').replace(`namespace: ${ns}`, `namespace: ${OTHER_NS}`),
    );
    expect(other.stderr).toMatch(/forbidden/i);
  });
});

describe('the kuberay job backend against the API server', () => {
  const RUN = 'simplewiki-kube-test';
  const OTHER_RUN = 'enwiki-kube-test';
  const rayCluster = 'wiki-tokenizer';
  let backend: KubeRayBackend;
  let kubeConfig: KubeConfig;

  const spec = (runId: string, batch: number, tasks: string[]): JobSpec => ({
    id: jobId(runId, batch, 1),
    runId,
    batch,
    tasks,
    cpus: 2,
    entrypoint: runTasksEntrypoint({
      manifestUri: `s3://runs/${runId}/manifest.json`,
      outputPrefix: `s3://runs/${runId}/`,
      tasks,
      cpus: 2,
    }),
  });
  const a1 = spec(RUN, 1, ['enwiki-0-00000', 'enwiki-0-00001']);
  const a2 = spec(RUN, 2, ['enwiki-0-00002']);
  const b1 = spec(OTHER_RUN, 1, ['enwiki-1-00000']);

  /** Plays the KubeRay operator: status is a subresource the submitter cannot write. */
  async function operatorSets(id: string, status: Record<string, unknown>): Promise<void> {
    const r = await cluster.kubectl([
      'patch',
      `rayjobs.ray.io/${id}`,
      '-n',
      ns,
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({ status }),
    ]);
    if (r.code !== 0) throw new Error(`patching ${id} status: ${r.stderr}`);
  }
  const byId = async (runId: string) => new Map((await backend.list(runId)).map((j) => [j.id, j]));

  beforeAll(() => {
    kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(submitter);
    backend = new KubeRayBackend({ namespace: ns, rayCluster }, kubeConfig);
  });

  it('creates RayJobs the API server accepts and lists them by run label', async () => {
    for (const job of [a1, a2, b1]) await backend.submit(job);
    const jobs = await byId(RUN);
    expect([...jobs.keys()].sort()).toEqual([a1.id, a2.id]);
    expect(jobs.get(a1.id)).toMatchObject({ status: 'PENDING', tasks: a1.tasks });
    expect(jobs.get(a1.id)?.submitted_at).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect([...(await byId(OTHER_RUN)).keys()]).toEqual([b1.id]);
    // The RayJob as stored: on the long-lived RayCluster, the entrypoint a person would type.
    const stored = await cluster.kubectl(['get', `rayjobs.ray.io/${a1.id}`, '-n', ns, '-o', 'json']);
    const object = JSON.parse(stored.stdout) as {
      spec: { clusterSelector: Record<string, string>; entrypoint: string };
    };
    expect(object.spec.clusterSelector).toEqual({ 'ray.io/cluster': rayCluster });
    expect(object.spec.entrypoint).toBe(a1.entrypoint);
  });

  it('treats a retried submit of the same batch as done, and a different batch under that name as a conflict', async () => {
    await expect(backend.submit(a1)).resolves.toBeUndefined();
    await expect(backend.submit({ ...a1, tasks: ['enwiki-9-99999'] })).rejects.toThrow();
    expect((await backend.list(RUN)).length).toBe(2);
  });

  it('maps the status the operator writes', async () => {
    const started = '2026-11-28T10:00:00Z';
    await operatorSets(a1.id, { jobDeploymentStatus: 'Initializing' });
    expect((await byId(RUN)).get(a1.id)?.status).toBe('PENDING');
    await operatorSets(a1.id, {
      jobDeploymentStatus: 'Running',
      jobStatus: 'RUNNING',
      jobId: a1.id,
      startTime: started,
    });
    expect((await byId(RUN)).get(a1.id)).toMatchObject({ status: 'RUNNING', started_at: started });
    await operatorSets(a1.id, {
      jobDeploymentStatus: 'Complete',
      jobStatus: 'SUCCEEDED',
      endTime: '2026-11-28T10:05:00Z',
    });
    expect((await byId(RUN)).get(a1.id)).toMatchObject({ status: 'SUCCEEDED', ended_at: '2026-11-28T10:05:00Z' });
    // The operator gave up before Ray ran anything: FAILED with its reason, though jobStatus is empty.
    await operatorSets(a2.id, {
      jobDeploymentStatus: 'Failed',
      reason: 'AppFailed',
      message: 'cluster wiki-tokenizer not found',
    });
    const failed = (await byId(RUN)).get(a2.id);
    expect(failed).toMatchObject({ status: 'FAILED', message: 'AppFailed: cluster wiki-tokenizer not found' });
    // Without a dashboard URL the operator's words are the only log there is.
    expect(await backend.logsTail(a2.id, 1000)).toBe('AppFailed: cluster wiki-tokenizer not found');
  });

  it('garbage-collects finished RayJobs and stops running ones; both are idempotent', async () => {
    await backend.delete(a1.id);
    await backend.delete(a1.id); // already gone: not an error
    await backend.stop(a2.id);
    await backend.stop(a2.id);
    expect(await backend.list(RUN)).toEqual([]);
    expect((await backend.list(OTHER_RUN)).map((j) => j.id)).toEqual([b1.id]);
    expect(await backend.logsTail(a1.id, 1000)).toBe('');
  });

  // KubeRay v1.6.2 (HTTPMode) keeps a RayJob Running across a lost head and submits its Ray job again, under the same
  // id, on the new head (rayjob_controller.go, JobDeploymentStatusRunning); the rerun's start becomes status.startTime.
  it('keeps a RayJob that KubeRay re-ran on a new head in flight, timing it out from the rerun', async () => {
    const job = spec(RUN, 3, ['enwiki-0-00003']);
    await backend.submit(job);
    const created = (await byId(RUN)).get(job.id);
    await operatorSets(job.id, {
      jobDeploymentStatus: 'Running',
      jobStatus: 'RUNNING',
      jobId: job.id,
      startTime: created?.submitted_at,
    });
    await new Promise((r) => setTimeout(r, 4000));
    // The head was lost and came back; the operator re-submitted the job just now.
    const rerun = new Date(Math.floor(Date.now() / 1000) * 1000).toISOString().replace('.000Z', 'Z');
    await operatorSets(job.id, {
      jobDeploymentStatus: 'Running',
      jobStatus: 'RUNNING',
      jobId: job.id,
      startTime: rerun,
    });
    const listed = await backend.list(RUN);
    expect(listed.find((j) => j.id === job.id)).toMatchObject({ status: 'RUNNING', started_at: rerun });
    const limits: Limits = {
      tasksPerJob: 1,
      cpusPerJob: 2,
      jobTargetSeconds: 600,
      maxJobsInFlight: 1,
      maxAttempts: 3,
      jobTimeoutSeconds: 3,
      jobTtlSeconds: 3600,
      paused: false,
    };
    const decision = decide({
      runId: RUN,
      taskIds: job.tasks,
      taskDocs: new Map([[job.tasks[0]!, 2000]]),
      done: new Set(),
      jobs: {
        next_batch: 4,
        jobs: [{ id: job.id, batch: 3, tasks: job.tasks, submitted_at: created?.submitted_at ?? '' }],
      },
      attempts: { tasks: {} },
      quarantine: { tasks: {} },
      backendJobs: listed,
      reasons: new Map(),
      limits,
      now: Date.parse(rerun) + 1000,
    });
    // Submitted more than job_timeout_seconds ago, but re-run 1 s ago: not stopped, not failed, still in flight.
    expect(decision.stop).toEqual([]);
    expect(decision.events).toEqual([]);
    expect(decision.jobs.jobs.map((j) => j.id)).toEqual([job.id]);
    await backend.delete(job.id);
  });

  // Against the real server: Lease times must be MicroTime with six digits, and a release must be accepted.
  it('takes, renews and hands over the run Lease', async () => {
    const name = `tokenize-wiki-submit-${RUN}`;
    const first = new KubeLease(ns, name, 'submitter-a', 2, kubeConfig);
    const second = new KubeLease(ns, name, 'submitter-b', 2, kubeConfig);
    expect((await first.acquire()).held).toBe(true);
    expect(await second.acquire()).toMatchObject({ held: false, holder: 'submitter-a' });
    expect(await first.renew()).toBe(true);
    await first.release();
    expect((await second.acquire()).held).toBe(true);
    // second stops renewing; once its lease has expired, first takes it over and second learns it lost it
    await new Promise((r) => setTimeout(r, 2500));
    expect((await first.acquire()).held).toBe(true);
    expect(await second.renew()).toBe(false);
    const holder = await cluster.kubectl([
      'get',
      `leases.coordination.k8s.io/${name}`,
      '-n',
      ns,
      '-o',
      'jsonpath={.spec.holderIdentity}',
    ]);
    expect(holder.stdout).toBe('submitter-a');
  });
});
