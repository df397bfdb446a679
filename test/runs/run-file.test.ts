import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { jobId, MAX_JOB_NAME } from '../../src/runs/names.js';
import { repoRoot } from '../harness/paths.js';
import { manifestOptionsOf, parseRunFile } from '../../src/runs/run-file.js';

/** Every run file committed under apps/ (folders named runs/, minus their kustomization). */
function committedRunFiles(dir = join(repoRoot, 'apps')): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...committedRunFiles(path));
    else if (/\/runs\/[^/]+\.ya?ml$/.test(path) && !entry.name.startsWith('kustomization')) found.push(path);
  }
  return found;
}

const minimal = `
run_id: testwiki-1
dumps: [s3://b/dumps/testwiki.json.gz]
output_prefix: s3://b/runs/testwiki-1/
backend: {kind: ray-jobs-api, dashboard_url: "http://127.0.0.1:8265"}
`;

describe('run file', () => {
  const files = committedRunFiles();

  it('finds the committed run files', () => {
    expect(files.map((f) => relative(repoRoot, f))).toContain('apps/wiki-tokenizer/runs/enwiki-20261122.yaml');
  });

  it.each(files.map((f) => [relative(repoRoot, f), f]))('accepts %s', (_name, file) => {
    const run = parseRunFile(readFileSync(file, 'utf8'), file);
    expect(run.output_prefix.endsWith('/')).toBe(false);
    expect(run.manifest_uri).toMatch(/manifest\.json$/);
    expect(jobId(run.run_id, 99_999, 9).length).toBeLessThanOrEqual(MAX_JOB_NAME);
  });

  it('fills defaults: manifest beside the output, object-store dump access', () => {
    const run = parseRunFile(minimal, 'run.yaml');
    expect(run).toMatchObject({
      output_prefix: 's3://b/runs/testwiki-1',
      manifest_uri: 's3://b/runs/testwiki-1/manifest.json',
      text_field: 'text',
      encoding: 'cl100k_base',
      format: 'jsonl',
      dump_access: 'object-store',
      paused: false,
      max_attempts: 3,
    });
  });

  it('takes the output format, and passes it to the manifest', () => {
    expect(manifestOptionsOf(parseRunFile(`${minimal}format: megatron\n`, 'run.yaml')).outputFormat).toBe('megatron');
  });

  it.each([
    ['run_id: Enwiki_1', 'run_id'],
    ['max_attempts: 0', 'max_attempts'],
    ['tasks_per_job: "4"', 'tasks_per_job'],
    ['dump_access: ftp', 'dump_access'],
    ['format: parquet', 'format'],
    ['backend: {kind: kuberay, namespace: tokenize-wiki}', 'backend.ray_cluster'],
    ['backend: {kind: ray-jobs-api, dashboard_url: "ftp://x"}', 'backend.dashboard_url'],
    ['max_doc_per_task: 10', 'max_doc_per_task'],
  ])('rejects %s naming the key', (line, key) => {
    const key0 = line.split(':')[0] as string;
    const text = minimal
      .split('\n')
      .filter((l) => !l.startsWith(`${key0}:`))
      .concat(line)
      .join('\n');
    expect(() => parseRunFile(text, 'runs/x.yaml')).toThrow(new RegExp(`^runs/x\\.yaml: .*${key.replace('.', '\\.')}`));
  });

  it('names the file and line of a YAML syntax error', () => {
    expect(() => parseRunFile('run_id: a\ndumps: [unclosed\n', 'runs/bad.yaml')).toThrow(
      /^runs\/bad\.yaml:\d+: not valid YAML/,
    );
  });
});
