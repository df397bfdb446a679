// Every rendered object is valid against the schema of its kind at the pinned versions: core
// Kubernetes from k8s.io/kubernetes' OpenAPI, custom resources from the pinned operators' CRDs.
import { beforeAll, describe, expect, it } from 'vitest';
import {
  APP_COMPONENTS,
  APP_OVERLAYS,
  listKustomizations,
  render,
  renderWithComponents,
  type K8sObject,
} from './gitops.js';
import { closeSchemas, loadValidator, type Validator } from './schemas.js';

const renderable = listKustomizations()
  .filter((k) => k.kind === 'Kustomization')
  .map((k) => k.dir);

let validator: Validator;
beforeAll(async () => {
  validator = await loadValidator();
});

function invalid(objects: readonly K8sObject[]): string[] {
  return objects.flatMap((o) => validator.validate(o));
}

describe('schemas', () => {
  it('knows the core kinds and every CRD kind the tree uses', () => {
    const known = validator.known();
    for (const k of [
      'v1/ConfigMap',
      'apps/v1/Deployment',
      'batch/v1/CronJob',
      'policy/v1/PodDisruptionBudget',
      'apiextensions.k8s.io/v1/CustomResourceDefinition',
      'ray.io/v1/RayCluster',
      'ray.io/v1/RayJob',
      'argoproj.io/v1alpha1/Application',
      'argoproj.io/v1alpha1/AppProject',
      'monitoring.coreos.com/v1/PodMonitor',
      'monitoring.coreos.com/v1/ServiceMonitor',
      'monitoring.coreos.com/v1/PrometheusRule',
    ]) {
      expect(known, k).toContain(k);
    }
  });

  it('catches a misspelt field, a wrong type and a missing required field', () => {
    const cronJob = (spec: Record<string, unknown>): K8sObject => ({
      apiVersion: 'batch/v1',
      kind: 'CronJob',
      metadata: { name: 'x', namespace: 'y' },
      spec,
    });
    const template = { spec: { template: { spec: { containers: [{ name: 'c', image: 'i:1' }] } } } };
    expect(validator.validate(cronJob({ schedule: '* * * * *', jobTemplate: template }))).toEqual([]);
    expect(
      validator.validate(cronJob({ schedule: '* * * * *', concurencyPolicy: 'Forbid', jobTemplate: template })).join(),
    ).toContain('concurencyPolicy');
    expect(validator.validate(cronJob({ schedule: 5, jobTemplate: template })).join()).toContain('/spec/schedule');
    expect(validator.validate(cronJob({ schedule: '* * * * *' })).join()).toContain('jobTemplate');
    const rc: K8sObject = {
      apiVersion: 'ray.io/v1',
      kind: 'RayCluster',
      metadata: { name: 'x', namespace: 'y', labelz: {} } as K8sObject['metadata'],
      spec: {
        headGroupSpec: { rayStartParams: {}, template: { spec: { containers: [{ name: 'h', image: 'i:1' }] } } },
        workerGroupSpecz: [],
      },
    };
    const errors = validator.validate(rc).join('\n');
    expect(errors).toContain('workerGroupSpecz');
    expect(errors).toContain('labelz');
  });

  it('closes object schemas without touching property names or open maps', () => {
    const closed = closeSchemas({
      type: 'object',
      properties: {
        properties: { type: 'object', properties: { a: { type: 'string' } } },
        labels: { type: 'object', additionalProperties: { type: 'string' } },
      },
    });
    expect(closed).toEqual({
      type: 'object',
      additionalProperties: false,
      properties: {
        properties: { type: 'object', properties: { a: { type: 'string' } }, additionalProperties: false },
        labels: { type: 'object', additionalProperties: { type: 'string' } },
      },
    });
  });

  it.each(renderable)('%s: every rendered object is schema-valid', async (dir) => {
    expect(invalid(await render(dir))).toEqual([]);
  });

  it.each(APP_OVERLAYS)('%s with every optional component: every object is schema-valid', async (dir) => {
    expect(invalid(await renderWithComponents(dir, APP_COMPONENTS))).toEqual([]);
  });
});
