import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parse, YAMLParseError } from 'yaml';
import { z } from 'zod';
import { InputError, parseWith } from '../errors/index.js';
import { DEFAULT_MAX_DOCS_PER_TASK, DEFAULT_MAX_TASK_BYTES, type ManifestOptions } from '../manifest/index.js';
import type { ResolveOptions } from '../dumps/index.js';
import { joinUri } from '../storage/index.js';
import { OUTPUT_FORMATS, MANIFEST_KEY } from '../output/index.js';
import { ENCODINGS } from '../tokenize/index.js';

/** A Kubernetes label value / DNS-1123 label: the run id goes into RayJob labels and names. */
const LABEL_SAFE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

const positive = z.number().int().positive();

const RayJobsApiBackend = z.strictObject({
  kind: z.literal('ray-jobs-api'),
  /** The Ray dashboard, e.g. http://127.0.0.1:8265 or http://tokenize-wiki-head-svc:8265. */
  dashboard_url: z.url({ protocol: /^https?$/ }),
});

const KubeRayBackend = z.strictObject({
  kind: z.literal('kuberay'),
  namespace: z.string().regex(LABEL_SAFE, 'a Kubernetes namespace name'),
  /** The long-lived RayCluster the RayJobs select (spec.clusterSelector ray.io/cluster). */
  ray_cluster: z.string().regex(LABEL_SAFE, 'a RayCluster name'),
});

export const RunFileSchema = z
  .strictObject({
    run_id: z
      .string()
      .max(63)
      .regex(
        LABEL_SAFE,
        'lowercase letters, digits and "-", starting and ending with a letter or digit (it becomes a Kubernetes label)',
      ),
    dumps: z.array(z.string().min(1)).min(1),
    text_field: z.string().min(1).default('text'),
    encoding: z.enum(ENCODINGS).default('cl100k_base'),
    append_eot: z.boolean().default(false),
    /** What tasks write: `jsonl` rows with ids, or a Megatron-LM `.bin`/`.idx` dataset per task (docs/storage.md). */
    format: z.enum(OUTPUT_FORMATS).default('jsonl'),
    max_docs_per_task: positive.default(DEFAULT_MAX_DOCS_PER_TASK),
    output_prefix: z
      .string()
      .min(1)
      .transform((uri) => uri.replace(/\/+$/, '')),
    /** Default: <output_prefix>/manifest.json. */
    manifest_uri: z.string().min(1).optional(),
    /**
     * Make a missing manifest in a job on the cluster instead of inside the submitter: a manifest pass over a large
     * dump (enwiki: tens of minutes) outlasts a CronJob tick's deadline.
     */
    manifest_in_job: z.boolean().default(false),
    /** Tasks per job until a task has finished; after that jobs are sized from the measured throughput. */
    tasks_per_job: positive.default(4),
    /** Jobs are sized to run about this long at the measured docs per CPU-second. */
    job_target_seconds: positive.default(600),
    cpus_per_job: positive.default(1),
    max_jobs_in_flight: positive.default(2),
    max_attempts: positive.default(3),
    /** true: submit nothing new; jobs in flight finish and are still reconciled. */
    paused: z.boolean().default(false),
    /** A job pending or running longer than this is stopped by the submitter and its tasks retried. */
    job_timeout_seconds: positive.default(3600),
    /** Finished jobs (RayJobs, Ray job records) are deleted this long after they end. */
    rayjob_ttl_seconds: positive.default(86_400),
    /** How workers read dumps: from the object store (staged) or straight over http(s). */
    dump_access: z.enum(['object-store', 'http']).default('object-store'),
    backend: z.discriminatedUnion('kind', [RayJobsApiBackend, KubeRayBackend]),
  })
  .transform((run) => ({ ...run, manifest_uri: run.manifest_uri ?? joinUri(run.output_prefix, MANIFEST_KEY) }));

export type RunFile = z.output<typeof RunFileSchema>;
export type Backend = RunFile['backend'];

/** Parse a run file's YAML text; `source` names the file in every error. */
export function parseRunFile(text: string, source: string): RunFile {
  let value: unknown;
  try {
    value = parse(text);
  } catch (error) {
    const line = error instanceof YAMLParseError ? error.linePos?.[0]?.line : undefined;
    throw new InputError(
      `${source}${line === undefined ? '' : `:${line}`}: not valid YAML (${(error as Error).message.split('\n')[0]})`,
    );
  }
  return parseWith(RunFileSchema, value, source);
}

export async function loadRunFile(path: string): Promise<RunFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new InputError(
      `${path}: cannot read the run file (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
    );
  }
  return parseRunFile(text, path);
}

/**
 * The run files named by `paths`: each a run file, or a folder of them (the mounted runs ConfigMap), so adding a run
 * is one new file. Mounted ConfigMaps also hold `..data` symlinks: only visible *.yaml / *.yml files count.
 */
export async function runFilePaths(paths: readonly string[]): Promise<string[]> {
  const files: string[] = [];
  for (const path of paths) {
    const info = await stat(path).catch(() => undefined);
    if (!info) throw new InputError(`${path}: no such run file or folder`);
    if (!info.isDirectory()) {
      files.push(path);
      continue;
    }
    const names = (await readdir(path)).filter((n) => /^[^.].*\.ya?ml$/.test(n) && n !== 'kustomization.yaml').sort();
    if (names.length === 0) throw new InputError(`${path}: no run files (*.yaml) in this folder`);
    files.push(...names.map((n) => join(path, n)));
  }
  return files;
}

/** The manifest settings a run file decides (the same ones `tokenize-wiki manifest` takes as flags). */
export function manifestOptionsOf(run: RunFile): ManifestOptions & ResolveOptions {
  return {
    textField: run.text_field,
    encoding: run.encoding,
    appendEot: run.append_eot,
    outputFormat: run.format,
    maxDocsPerTask: run.max_docs_per_task,
    maxTaskBytes: DEFAULT_MAX_TASK_BYTES,
    allowIncompleteDump: false,
  };
}
