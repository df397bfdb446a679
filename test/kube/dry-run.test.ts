// Server-side dry run of every kustomization in the GitOps tree against a real kube-apiserver with
// the pinned operators' CRDs installed: field names, enums, defaults and CRD schemas (including CEL
// rules) are checked by the server itself, not by a copy of its schemas.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchCrds } from './crds.js';
import { startKube, type KubeCluster } from './harness.js';
import { discoverOverlays, render, asList, type K8sObject } from './overlays.js';

const overlays = discoverOverlays();

let cluster: KubeCluster | undefined;
const rendered = new Map<string, { yaml: string; objects: K8sObject[] }>();
const renderErrors = new Map<string, string>();

const NAMESPACE = 'Namespace';
const CRD = 'CustomResourceDefinition';

beforeAll(async () => {
  cluster = await startKube({ log: (l) => console.log(l) });
  const kubectl = cluster.kubectl;
  const apply = async (what: string, input: string) => {
    const r = await kubectl(['apply', '--server-side', '--field-manager=tokenize-wiki-test', '-f', '-'], { input });
    if (r.code !== 0) throw new Error(`${what}: ${r.stderr.trim()}`);
  };

  for (const o of overlays) {
    try {
      rendered.set(o.dir, await render(cluster.binaries.kubectl, o.dir));
    } catch (e) {
      renderErrors.set(o.dir, (e as Error).message);
    }
  }
  const all = [...rendered.values()].flatMap((r) => r.objects);

  // What a cluster has before an overlay syncs: its namespaces (Argo CD's CreateNamespace or the
  // overlay's own Namespace) and the CRDs of the kinds it uses (installed by an earlier wave). The
  // tree's own CRDs win over the pinned ones of the same name: they are what gets deployed. Pinned
  // CRDs of kinds the tree never uses would check nothing, so they are left out to save time.
  const t0 = Date.now();
  const namespaces = new Set(all.filter((o) => o.kind === NAMESPACE).map((o) => o.metadata.name ?? ''));
  for (const o of all) if (o.metadata.namespace) namespaces.add(o.metadata.namespace);
  namespaces.delete('');
  await apply(
    'creating namespaces',
    asList([...namespaces].map((name) => ({ apiVersion: 'v1', kind: NAMESPACE, metadata: { name } }))),
  );
  const ownCrds = all.filter((o) => o.kind === CRD);
  const own = new Set(ownCrds.map((c) => c.metadata.name));
  const used = new Set(all.map((o) => `${o.apiVersion.split('/')[0] ?? ''}/${o.kind}`));
  const pinned = (await fetchCrds()).filter(
    (d) => !own.has(d.crd.metadata.name) && used.has(`${d.crd.spec.group}/${d.crd.spec.names.kind}`),
  );
  // One apply and one wait for all of them: each CRD change makes the server rebuild its OpenAPI.
  await apply('installing CRDs', [...pinned.map((d) => d.yaml), asList(ownCrds)].join('\n---\n'));
  const names = [...pinned.map((d) => d.crd.metadata.name), ...own].map((n) => `crd/${n ?? ''}`);
  const established = await kubectl(['wait', '--for=condition=Established', '--timeout=120s', ...names]);
  if (established.code !== 0) throw new Error(`CRDs not established: ${established.stderr.trim()}`);
  console.log(
    `kube harness: API server ready in ${cluster.startSeconds}s; ${namespaces.size} namespaces, ` +
      `${pinned.length} pinned CRDs (${pinned.map((d) => d.crd.spec.names.kind).join(', ')}) and ` +
      `${ownCrds.length} of the tree's own CRDs in ${(Date.now() - t0) / 1000}s`,
  );
}, 60 * 60_000); // a first run builds kube-apiserver, kubectl and etcd from source

afterAll(async () => {
  await cluster?.stop();
});

describe('server-side dry run of the GitOps tree', () => {
  it('finds kustomizations to check', () => {
    expect(overlays.length).toBeGreaterThan(0);
  });

  for (const overlay of overlays) {
    it(`${overlay.dir} is accepted by the API server`, async () => {
      expect(renderErrors.get(overlay.dir)).toBeUndefined();
      const out = rendered.get(overlay.dir);
      expect(out?.objects.length).toBeGreaterThan(0);
      // the rendered text itself, exactly what `kubectl apply -k` or Argo CD would send
      const r = await cluster!.kubectl(
        ['apply', '--server-side', '--dry-run=server', '--field-manager=tokenize-wiki-test', '-f', '-'],
        { input: out?.yaml ?? '' },
      );
      // stderr names the object and field the server rejected
      expect(r.stderr.trim(), `${overlay.dir}: ${r.stderr}`).toBe('');
      expect(r.code).toBe(0);
    });
  }
});

describe('the dry run has teeth', () => {
  const dryRun = (objects: K8sObject[]) =>
    cluster!.kubectl(['apply', '--server-side', '--dry-run=server', '--field-manager=tokenize-wiki-test', '-f', '-'], {
      input: asList(objects),
    });
  const rayCluster = () => {
    const found = [...rendered.values()].flatMap((r) => r.objects).find((o) => o.kind === 'RayCluster');
    if (!found) throw new Error('no RayCluster rendered');
    return structuredClone(found);
  };

  it('rejects a field the RayCluster CRD does not define', async () => {
    const bad = rayCluster();
    (bad.spec as Record<string, unknown>).headGroupSpecs = {};
    const r = await dryRun([bad]);
    expect(r.code).not.toBe(0);
    // kubectl checks against the server's published schema before sending, the server after
    expect(r.stderr).toMatch(/unknown field .*headGroupSpecs/);
  });

  it('rejects a value outside a CRD enum', async () => {
    const bad = rayCluster();
    (bad.spec as Record<string, unknown>).upgradeStrategy = { type: 'Sometimes' };
    const r = await dryRun([bad]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/spec.upgradeStrategy.type: Unsupported value: "Sometimes"/);
  });
});
