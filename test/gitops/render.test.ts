// Every kustomization of the tree renders, and every remote reference is pinned.
import { describe, expect, it } from 'vitest';
import { APP_COMPONENTS, APP_OVERLAYS, isImmutablePin, isRemote, listKustomizations, parseRemote, render, renderWithComponents } from './gitops.js';

const all = listKustomizations();
const renderable = all.filter((k) => k.kind === 'Kustomization');
const local = renderable.filter((k) => !k.resources.some(isRemote));
const remote = renderable.filter((k) => k.resources.some(isRemote));

describe('kustomizations', () => {
  it('the tree has the expected entry points', () => {
    const dirs = all.map((k) => k.dir);
    for (const d of [
      'argocd/install',
      'argocd/projects',
      'argocd/root/prod',
      'argocd/root/dev',
      'clusters/prod',
      'clusters/dev',
      'infrastructure/flannel',
      'infrastructure/local-path',
      'infrastructure/kuberay',
      'infrastructure/monitoring',
      'apps/wiki-tokenizer/base',
      ...APP_OVERLAYS,
      ...APP_COMPONENTS,
    ]) {
      expect(dirs, d).toContain(d);
    }
  });

  it('lists the kustomizations with remote resources (rendered from the Go module cache)', () => {
    // The list is part of the contract: a new remote base must be added to gitops.ts's module map.
    expect(remote.map((k) => k.dir)).toEqual(['argocd/install', 'infrastructure/flannel', 'infrastructure/kuberay', 'infrastructure/local-path']);
  });

  it.each(all.flatMap((k) => k.resources.filter(isRemote).map((ref) => [k.dir, ref] as const)))(
    '%s: remote %s is pinned to a release tag or commit',
    (_dir, ref) => {
      const parsed = parseRemote(ref);
      expect(parsed, `${ref}: use https://raw.githubusercontent.com/<owner>/<repo>/<tag>/<file> or https://github.com/<owner>/<repo>//<dir>?ref=<tag>`).toBeDefined();
      expect(isImmutablePin(parsed?.pin ?? ''), `${ref}: ${parsed?.pin ?? ''} is not a vX.Y.Z tag or a full commit id`).toBe(true);
    },
  );

  it('components are only referenced, never remote', () => {
    for (const k of all) for (const c of k.components) expect(isRemote(c), `${k.dir}: ${c}`).toBe(false);
  });

  it.each(local.map((k) => k.dir))('%s renders with kubectl kustomize', async (dir) => {
    const objects = await render(dir);
    expect(objects.length).toBeGreaterThan(0);
  });

  it.each(remote.map((k) => k.dir))('%s renders with its upstream files from the pinned Go module', async (dir) => {
    const objects = await render(dir);
    expect(objects.length).toBeGreaterThan(0);
  });

  it.each(APP_OVERLAYS)('%s renders with every optional component enabled', async (dir) => {
    const objects = await renderWithComponents(dir, APP_COMPONENTS);
    expect(objects.map((o) => o.kind)).toEqual(expect.arrayContaining(['Deployment', 'Ingress']));
  });
});
