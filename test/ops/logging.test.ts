// The optional log-shipping app (infrastructure/logging): pinned Alloy image from versions.yaml, the same pod
// policies as our other workloads, read-only access to pods and their logs in one namespace, and a config whose
// labels stay low-cardinality (job_id and task_id go to structured metadata).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { describe, expect, it } from 'vitest';
import { objectId, render, type K8sObject } from '../gitops/gitops.js';
import { repoRoot } from '../harness/paths.js';

const APP = 'infrastructure/logging';
const alloyPin = (): string =>
  z
    .object({ alloy: z.string().regex(/^v\d+\.\d+\.\d+$/) })
    .parse(YAML.parse(readFileSync(path.join(repoRoot, 'versions.yaml'), 'utf8'))).alloy;

const Container = z.looseObject({
  name: z.string(),
  image: z.string(),
  args: z.array(z.string()).optional(),
  resources: z.object({
    requests: z.object({ cpu: z.string(), memory: z.string() }),
    limits: z.object({ memory: z.string() }),
  }),
  securityContext: z.object({
    allowPrivilegeEscalation: z.literal(false),
    readOnlyRootFilesystem: z.literal(true),
    capabilities: z.object({ drop: z.tuple([z.literal('ALL')]) }),
  }),
  envFrom: z.array(z.object({ configMapRef: z.object({ name: z.string() }) })).optional(),
});
const PodSpec = z.looseObject({
  serviceAccountName: z.string(),
  securityContext: z.looseObject({
    runAsNonRoot: z.literal(true),
    seccompProfile: z.object({ type: z.literal('RuntimeDefault') }),
  }),
  containers: z.array(Container).length(1),
  volumes: z.array(z.looseObject({ name: z.string() })),
});

function deploymentOf(objects: K8sObject[]): { pod: z.infer<typeof PodSpec>; labels: Record<string, string> } {
  const d = objects.find((o) => o.kind === 'Deployment');
  const template = z
    .object({ metadata: z.object({ labels: z.record(z.string(), z.string()) }), spec: z.unknown() })
    .parse((d?.spec as { template?: unknown } | undefined)?.template);
  return { pod: PodSpec.parse(template.spec), labels: template.metadata.labels };
}

describe('logging: the Alloy app', () => {
  it('runs the Alloy image pinned in versions.yaml, and every mention of that image in the tree names the pin', async () => {
    const pin = alloyPin();
    const { pod } = deploymentOf(await render(APP));
    expect(pod.containers[0]?.image).toBe(`docker.io/grafana/alloy:${pin}`);
    const files = execFileSync('git', ['ls-files', '-co', '--exclude-standard'], { cwd: repoRoot, encoding: 'utf8' })
      .split('\n')
      .filter(
        (f) =>
          /\.(ya?ml|md|ts|json|alloy)$/.test(f) &&
          !f.endsWith('.test.ts') &&
          f !== 'versions.yaml' &&
          !f.startsWith('node_modules/'),
      );
    const wrong: string[] = [];
    for (const f of files) {
      let text: string;
      try {
        text = readFileSync(path.join(repoRoot, f), 'utf8');
      } catch {
        continue; // listed by git, deleted in the work tree
      }
      for (const m of text.matchAll(/grafana\/alloy:(v[\d.]+)/g))
        if (m[1] !== pin) wrong.push(`${f}: grafana/alloy:${m[1]}, versions.yaml says ${pin}`);
    }
    expect(wrong).toEqual([]);
  });

  it('every object is namespaced in tokenize-wiki and labelled; the pod is non-root, read-only, capped and has the component label', async () => {
    const objects = await render(APP);
    for (const o of objects) {
      expect(o.metadata.namespace, objectId(o)).toBe('tokenize-wiki');
      for (const key of [
        'tokenize-wiki/app',
        'app.kubernetes.io/name',
        'app.kubernetes.io/part-of',
        'app.kubernetes.io/component',
      ])
        expect(o.metadata.labels?.[key], `${objectId(o)} ${key}`).toBeTruthy();
    }
    const { pod, labels } = deploymentOf(objects); // the schema checks securityContext and resources
    expect(labels['app.kubernetes.io/component']).toBe('logging');
    expect(pod.serviceAccountName).toBe('alloy');
    // Alloy writes only to its storage path, an emptyDir: the root filesystem stays read-only.
    expect(pod.containers[0]?.args).toContain('--storage.path=/var/lib/alloy');
    expect(pod.volumes.map((v) => v.name).sort()).toEqual(['config', 'storage']);
  });

  it('may only read pods and their logs, in its own namespace', async () => {
    const objects = await render(APP);
    expect(objects.filter((o) => o.kind.startsWith('Cluster'))).toEqual([]);
    const role = z
      .object({
        rules: z.array(
          z.object({ apiGroups: z.array(z.string()), resources: z.array(z.string()), verbs: z.array(z.string()) }),
        ),
      })
      .parse(objects.find((o) => o.kind === 'Role'));
    expect(role.rules.flatMap((r) => r.apiGroups)).toEqual(['', '']);
    expect(role.rules.flatMap((r) => r.resources).sort()).toEqual(['pods', 'pods/log']);
    expect(new Set(role.rules.flatMap((r) => r.verbs))).toEqual(new Set(['get', 'list', 'watch']));
    const binding = objects.find((o) => o.kind === 'RoleBinding') as
      (K8sObject & { subjects: { name: string }[] }) | undefined;
    expect(binding?.subjects.map((s) => s.name)).toEqual(['alloy']);
  });

  it('its config reads the Loki URL the ConfigMap provides, tails only tokenize-wiki and keeps job_id / task_id out of the labels', async () => {
    const objects = await render(APP);
    const config = z
      .object({ data: z.object({ 'config.alloy': z.string() }) })
      .parse(objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('alloy-config-'))).data[
      'config.alloy'
    ];
    const endpoint = z
      .object({ data: z.record(z.string(), z.string()) })
      .parse(objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'alloy-loki-endpoint'));
    const env = /sys\.env\("(\w+)"\)/.exec(config)?.[1];
    expect(env).toBeDefined();
    expect(Object.keys(endpoint.data)).toEqual([env]);
    expect(endpoint.data[env ?? '']).toMatch(/^https?:\/\/.+\/loki\/api\/v1\/push$/);
    expect(config).toMatch(/names\s*=\s*\["tokenize-wiki"\]/);
    const labels = /stage\.labels\s*\{\s*values\s*=\s*\{([^}]*)\}/.exec(config)?.[1] ?? '';
    const metadata = /stage\.structured_metadata\s*\{\s*values\s*=\s*\{([^}]*)\}/.exec(config)?.[1] ?? '';
    const keys = (block: string): string[] => [...block.matchAll(/(\w+)\s*=/g)].map((m) => m[1] ?? '').sort();
    expect(keys(labels)).toEqual(['level', 'run_id']);
    expect(keys(metadata)).toEqual(['job_id', 'task_id']);
    // Braces balance: a cheap guard against a truncated edit (no Alloy binary is available to parse it here).
    expect(config.split('{').length).toBe(config.split('}').length);
  });

  it('the Argo CD Application of clusters/components/logging points at this folder in the tokenize-wiki project', async () => {
    const app = z
      .object({
        spec: z.object({
          project: z.string(),
          source: z.object({ path: z.string() }),
          destination: z.object({ namespace: z.string() }),
        }),
      })
      .parse(YAML.parse(readFileSync(path.join(repoRoot, 'clusters/components/logging/logging.yaml'), 'utf8')));
    expect(app.spec.source.path).toBe(APP);
    expect(app.spec.project).toBe('tokenize-wiki');
    expect(app.spec.destination.namespace).toBe('tokenize-wiki');
  });
});
