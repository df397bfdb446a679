// The pure parts of the kube harness: how k8s.io/kubernetes's go.mod is made buildable outside its repository.
// No API server here.
import { describe, expect, it } from 'vitest';
import { etcdVersionOf, publishedStagingGoMod } from '../../scripts/lib/bundle/go-builds.js';

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
