// Every kustomization of the tree renders, from files in the tree only (upstream manifests vendored at their pins).
import { describe, expect, it } from 'vitest';
import {
  APP_COMPONENTS,
  APP_OVERLAYS,
  exec,
  isRemote,
  listKustomizations,
  render,
  renderWithComponents,
} from './gitops.js';
import { repoRoot } from '../harness/paths.js';

const all = listKustomizations();
const renderable = all.filter((k) => k.kind === 'Kustomization');

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

  it('names no remote resource: an air-gapped cluster needs nothing but this repository', () => {
    const remote = all.flatMap((k) => k.resources.filter(isRemote).map((ref) => `${k.dir}: ${ref}`));
    expect(remote, 'vendor upstream files with scripts/vendor-upstream.mts instead').toEqual([]);
  });

  it('the vendored upstream files are byte for byte those of the pinned releases', async () => {
    const r = await exec(process.execPath, ['--import', 'tsx', 'scripts/vendor-upstream.mts', '--check'], {
      cwd: repoRoot,
    });
    expect(r.stdout, r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('components are only referenced, never remote', () => {
    for (const k of all) for (const c of k.components) expect(isRemote(c), `${k.dir}: ${c}`).toBe(false);
  });

  it.each(renderable.map((k) => k.dir))('%s renders with kubectl kustomize', async (dir) => {
    const objects = await render(dir);
    expect(objects.length).toBeGreaterThan(0);
  });

  it.each(APP_OVERLAYS)('%s renders with every optional component enabled', async (dir) => {
    const objects = await renderWithComponents(dir, APP_COMPONENTS);
    expect(objects.map((o) => o.kind)).toEqual(expect.arrayContaining(['Deployment', 'Ingress']));
  });
});
