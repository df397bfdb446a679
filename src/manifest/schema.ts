import { z } from 'zod';
import { OUTPUT_FORMATS } from '../output/index.js';
import { ENCODINGS } from '../tokenize/index.js';

export const MANIFEST_FORMAT = 'tokenize-wiki/manifest';
export const MANIFEST_VERSION = 1;

const count = z.number().int().nonnegative();

/** Where a task starts decoding: an access point recorded by the manifest pass. */
export const AccessSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('gzip'),
    /** The access point's file, relative to the manifest's folder (`index/<dump>/…`). */
    index: z.string().min(1),
    compressed_offset: count,
    /** Exclusive end of the compressed bytes the task needs: it reads exactly [compressed_offset, compressed_end). */
    compressed_end: count,
    uncompressed_offset: count,
  }),
  z.object({
    kind: z.literal('bzip2'),
    /** The dump's block list, relative to the manifest's folder. */
    index: z.string().min(1),
    /** First and one-past-last block of the task, in the index's block list. */
    first_block: count,
    end_block: count,
    compressed_offset: count,
    compressed_end: count,
    uncompressed_offset: count,
  }),
]);
export type Access = z.infer<typeof AccessSchema>;

export const DumpEntrySchema = z.object({
  name: z.string().min(1),
  uri: z.string().min(1),
  wiki: z.string().min(1),
  compression: z.enum(['gzip', 'bzip2']),
  size: count,
  etag: z.string().optional(),
  last_modified: z.string().optional(),
  docs: count,
  uncompressed_bytes: count,
});
export type DumpEntry = z.infer<typeof DumpEntrySchema>;

export const TaskSchema = z.object({
  task_id: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, _ . - only'),
  dump: z.string().min(1),
  /** Ordinal of the first doc within its dump file, and how many docs the task holds. */
  first_doc: count,
  doc_count: z.number().int().positive(),
  /** 1-based line of the first doc's index line, and the task's uncompressed byte range [start, end). */
  first_line: z.number().int().positive(),
  uncompressed_start: count,
  uncompressed_end: count,
  /** sha256 of the task's index-line ids, one per line: proves which docs a shard covers. */
  ids_sha256: z.string().regex(/^[0-9a-f]{64}$/),
  access: AccessSchema,
});
export type Task = z.infer<typeof TaskSchema>;

export const ManifestSchema = z
  .object({
    format: z.literal(MANIFEST_FORMAT),
    version: z.literal(MANIFEST_VERSION, {
      error: (issue) =>
        `manifest version ${String(issue.input)} is not supported by this program (it reads version ${MANIFEST_VERSION}); re-create the manifest`,
    }),
    text_field: z.string().min(1),
    encoding: z.enum(ENCODINGS),
    append_eot: z.boolean(),
    /** What the tasks write (`format` names this document's own kind); manifests made before it are jsonl runs. */
    output_format: z.enum(OUTPUT_FORMATS).default('jsonl'),
    max_docs_per_task: z.number().int().positive(),
    max_task_bytes: z.number().int().positive(),
    dumps: z.array(DumpEntrySchema).min(1),
    tasks: z.array(TaskSchema),
    totals: z.object({ dumps: count, tasks: count, docs: count, uncompressed_bytes: count }),
  })
  .superRefine((manifest, ctx) => {
    const dumps = new Set(manifest.dumps.map((d) => d.name));
    const ids = new Set<string>();
    manifest.tasks.forEach((task, i) => {
      if (!dumps.has(task.dump))
        ctx.addIssue({ code: 'custom', path: ['tasks', i, 'dump'], message: `unknown dump "${task.dump}"` });
      if (ids.has(task.task_id))
        ctx.addIssue({ code: 'custom', path: ['tasks', i, 'task_id'], message: `duplicate task id "${task.task_id}"` });
      ids.add(task.task_id);
    });
  });
export type Manifest = z.infer<typeof ManifestSchema>;
