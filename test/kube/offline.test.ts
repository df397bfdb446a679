// The pure parts of the kube harness: how remote kustomize references map to Go modules, and how
// k8s.io/kubernetes's go.mod is made buildable outside its repository. No API server here.
import { describe, expect, it } from 'vitest';
import { etcdVersionOf, publishedStagingGoMod } from '../../scripts/lib/bundle/go-builds.js';
import { discoverOverlays, moduleFileFor } from './overlays.js';

describe('moduleFileFor', () => {
  it('maps a raw release file to the root module at that tag, with /vN for v2+', () => {
    expect(moduleFileFor('https://raw.githubusercontent.com/argoproj/argo-cd/v3.5.7/manifests/install.yaml')).toEqual({
      module: 'github.com/argoproj/argo-cd/v3',
      version: 'v3.5.7',
      subpath: 'manifests/install.yaml',
      env: undefined,
    });
  });

  it('maps a git kustomize base inside a nested module to that module', () => {
    expect(moduleFileFor('https://github.com/ray-project/kuberay//ray-operator/config/default?ref=v1.6.2')).toMatchObject({
      module: 'github.com/ray-project/kuberay/ray-operator',
      version: 'v1.6.2',
      subpath: 'config/default',
    });
  });

  it('skips the checksum database only for modules it has no entry for', () => {
    const ref = 'https://raw.githubusercontent.com/rancher/local-path-provisioner/v0.0.37/deploy/local-path-storage.yaml';
    expect(moduleFileFor(ref)?.env).toEqual({ GONOSUMDB: 'github.com/rancher/local-path-provisioner' });
  });

  it('gives up on branches, commits and other hosts', () => {
    expect(moduleFileFor('https://raw.githubusercontent.com/o/r/main/x.yaml')).toBeUndefined();
    expect(moduleFileFor('https://example.com/x.yaml')).toBeUndefined();
  });
});

describe('discoverOverlays', () => {
  it('finds every GitOps kustomization renderable offline', () => {
    const blocked = discoverOverlays().filter((o) => o.offlineBlocker);
    expect(blocked.map((o) => `${o.dir}: ${o.offlineBlocker ?? ''}`)).toEqual([]);
  });
});

describe('publishedStagingGoMod', () => {
  const goMod = [
    'module k8s.io/kubernetes',
    'require (',
    '\tk8s.io/api v0.0.0',
    '\tk8s.io/utils v0.0.0-20250604170112-4c0f3b243397',
    ')',
    'replace (',
    '\tk8s.io/api => ./staging/src/k8s.io/api',
    ')',
    '',
  ].join('\n');

  it('requires the published staging module version instead of ./staging', () => {
    const out = publishedStagingGoMod(goMod, '1.36.3');
    expect(out).toContain('\tk8s.io/api v0.36.3\n');
    expect(out).not.toContain('./staging');
    expect(out).toContain('k8s.io/utils v0.0.0-20250604170112-4c0f3b243397');
  });

  it('fails loudly when the layout changes', () => {
    expect(() => publishedStagingGoMod('module x\n', '1.36.3')).toThrow(/no \.\/staging replace/);
  });
});

it('reads the etcd version Kubernetes tests with', () => {
  expect(etcdVersionOf('#!/bin/bash\nETCD_VERSION=${ETCD_VERSION:-3.6.8}\n')).toBe('3.6.8');
});
