// RBAC proof against a real API server: the submitter's ServiceAccount, bound by the Role rendered
// from apps/wiki-tokenizer, can do what the submitter does (RayJobs, a Lease) in its namespace and
// nothing more: no Secrets, no Pods, no other namespace. Checked both with SelfSubjectAccessReview
// (`kubectl auth can-i`) and by acting as the ServiceAccount.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
let leaseName = 'tokenize-wiki-submitter';

function rulesOf(o: K8sObject): PolicyRule[] {
  return Array.isArray(o.rules) ? (o.rules as PolicyRule[]) : [];
}

beforeAll(async () => {
  cluster = await startKube({ log: (l) => console.log(l) });
  await installCrds(cluster.kubectl, (await fetchCrds()).filter((d) => d.source === 'kuberay'));

  const { objects } = await render(cluster.binaries.kubectl, APP);
  const roles = objects.filter((o) => o.kind === 'Role' && rulesOf(o).some((r) => r.resources?.includes('rayjobs')));
  if (roles.length !== 1) throw new Error(`${APP}: expected one Role granting rayjobs, found ${roles.length}`);
  const role = roles[0]!;
  ns = role.metadata.namespace ?? '';
  if (!ns) throw new Error(`${APP}: Role ${role.metadata.name ?? ''} has no namespace`);
  const binding = objects.find(
    (o) => o.kind === 'RoleBinding' && (o.roleRef as { kind?: string; name?: string } | undefined)?.name === role.metadata.name,
  );
  const subject = ((binding?.subjects ?? []) as { kind?: string; name?: string }[]).find((s) => s.kind === 'ServiceAccount');
  if (!subject?.name) throw new Error(`${APP}: no RoleBinding binds Role ${role.metadata.name ?? ''} to a ServiceAccount`);
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
  const applied = await cluster.kubectl(['apply', '--server-side', '--field-manager=tokenize-wiki-test', '-f', '-'], { input: asList(rbac) });
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
    const v = JSON.parse(r.stdout) as { serverVersion?: { gitVersion?: string }; clientVersion?: { gitVersion?: string } };
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
  const allowed: [string, string][] = [
    ...['create', 'get', 'list', 'watch', 'patch', 'delete'].map((v): [string, string] => [v, 'rayjobs.ray.io']),
    ...['get', 'list', 'watch'].map((v): [string, string] => [v, 'rayclusters.ray.io']),
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

  it('creates, lists by label, patches and deletes a RayJob', async () => {
    const created = await asSubmitter(['create', '-f', '-'], rayJob('rbac-proof-1'));
    expect(created.stderr).toBe('');
    const listed = await asSubmitter(['get', 'rayjobs.ray.io', '-n', ns, '-l', 'tokenize-wiki/run=rbac-proof', '-o', 'name']);
    expect(listed.stdout.trim()).toBe('rayjob.ray.io/rbac-proof-1');
    const patched = await asSubmitter(['label', 'rayjobs.ray.io/rbac-proof-1', '-n', ns, 'tokenize-wiki/attempt=2']);
    expect(patched.stderr).toBe('');
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
    const read = await asSubmitter(['get', `leases.coordination.k8s.io/${leaseName}`, '-n', ns, '-o', 'jsonpath={.spec.holderIdentity}']);
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
    const other = await asSubmitter(['create', '-f', '-'], rayJob('rbac-proof-2').replace(`namespace: ${ns}`, `namespace: ${OTHER_NS}`));
    expect(other.stderr).toMatch(/forbidden/i);
  });
});
