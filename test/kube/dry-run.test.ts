// Server-side dry run of every kustomization in the GitOps tree against a real kube-apiserver with
// the pinned operators' CRDs installed: field names, enums, defaults and CRD schemas (including CEL
// rules) are checked by the server itself, not by a copy of its schemas.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchCrds, installCrds } from './crds.js';
import { startKube, type KubeCluster } from './harness.js';
import { discoverOverlays, offlineTree, render, toYaml, type K8sObject, type OfflineTree } from './overlays.js';

const overlays = discoverOverlays();
const renderable = overlays.filter((o) => !o.offlineBlocker);

let cluster: KubeCluster | undefined;
let tree: OfflineTree | undefined;
const rendered = new Map<string, K8sObject[]>();
const renderErrors = new Map<string, string>();

const NAMESPACE = 'Namespace';
const CRD = 'CustomResourceDefinition';

beforeAll(async () => {
  cluster = await startKube({ log: (l) => console.log(l) });
  const kubectl = cluster.kubectl;
  await installCrds(kubectl, await fetchCrds());

  tree = await offlineTree();
  for (const o of renderable) {
    try {
      rendered.set(o.dir, (await render(cluster.binaries.kubectl, o.dir, tree.root)).objects);
    } catch (e) {
      renderErrors.set(o.dir, (e as Error).message);
    }
  }
  const all = [...rendered.values()].flat();
  // What a cluster has before an overlay syncs: its namespaces (Argo CD's CreateNamespace or the
  // overlay's own Namespace) and CRDs that the tree itself ships (installed by an earlier wave).
  const namespaces = new Set(all.filter((o) => o.kind === NAMESPACE).map((o) => o.metadata.name ?? ''));
  for (const o of all) if (o.metadata.namespace) namespaces.add(o.metadata.namespace);
  namespaces.delete('');
  for (const ns of namespaces) {
    const r = await kubectl(['create', 'namespace', ns, '--dry-run=client', '-o', 'yaml']);
    const applied = await kubectl(['apply', '--server-side', '--field-manager=tokenize-wiki-test', '-f', '-'], { input: r.stdout });
    if (applied.code !== 0) throw new Error(`creating namespace ${ns}: ${applied.stderr.trim()}`);
  }
  const ownCrds = all.filter((o) => o.kind === CRD);
  if (ownCrds.length > 0) {
    const applied = await kubectl(['apply', '--server-side', '--field-manager=tokenize-wiki-test', '-f', '-'], { input: toYaml(ownCrds) });
    if (applied.code !== 0) throw new Error(`installing the tree's own CRDs: ${applied.stderr.trim()}`);
    await kubectl(['wait', '--for=condition=Established', '--timeout=120s', ...ownCrds.map((c) => `crd/${c.metadata.name ?? ''}`)]);
  }
}, 60 * 60_000); // a first run builds kube-apiserver, kubectl and etcd from source

afterAll(async () => {
  await cluster?.stop();
  await tree?.remove();
});

describe('server-side dry run of the GitOps tree', () => {
  it('finds kustomizations to check', () => {
    const skipped = overlays.filter((o) => o.offlineBlocker);
    if (skipped.length > 0) {
      console.log(`cannot render offline, not checked: ${skipped.map((o) => `${o.dir} (${o.offlineBlocker})`).join('; ')}`);
    }
    expect(renderable.length).toBeGreaterThan(0);
  });

  for (const overlay of renderable) {
    it(`${overlay.dir} is accepted by the API server`, async () => {
      expect(renderErrors.get(overlay.dir)).toBeUndefined();
      const objects = rendered.get(overlay.dir) ?? [];
      expect(objects.length).toBeGreaterThan(0);
      const r = await cluster!.kubectl(
        ['apply', '--server-side', '--dry-run=server', '--field-manager=tokenize-wiki-test', '-f', '-'],
        { input: toYaml(objects) },
      );
      // stderr names the object and field the server rejected
      expect(r.stderr.trim(), `${overlay.dir}: ${r.stderr}`).toBe('');
      expect(r.code).toBe(0);
    });
  }
});
