import { z } from 'zod';
import { parseJson, parseWith } from '../errors/index.js';
import { joinUri, readText, storeFor } from '../storage/index.js';
import { OUTPUT_FORMATS, MARKERS_DIR, markerKey, taskIdOfMarker } from '../output/index.js';
import { ENCODINGS } from '../tokenize/index.js';

const count = z.number().int().nonnegative();

const FileRefSchema = z.object({ key: z.string(), bytes: count, sha256: z.string() });
export type FileRef = z.infer<typeof FileRefSchema>;

/** Written only after the shard is durable: a task is done if and only if its marker exists. */
export const MarkerSchema = z.object({
  format: z.literal('tokenize-wiki/marker'),
  version: z.literal(1),
  task_id: z.string(),
  dump: z.string(),
  docs: count,
  rows: count,
  tokens: count,
  text_bytes: count,
  skipped: z.record(z.string(), count),
  bad_docs: z.array(z.object({ line: count, offset: count, message: z.string() })),
  ids_sha256: z.string(),
  /** Markers from before the megatron format have no `output_format`: they are jsonl. */
  output_format: z.enum(OUTPUT_FORMATS).default('jsonl'),
  /** The shard: the `.jsonl.gz` of a jsonl task, the `.bin` of a megatron task. */
  shard: FileRefSchema,
  megatron: z.object({ dtype: z.enum(['uint16', 'int32']), idx: FileRefSchema, meta: FileRefSchema }).optional(),
  encoding: z.enum(ENCODINGS),
  text_field: z.string(),
  append_eot: z.boolean(),
  program_version: z.string(),
  started_at: z.string(),
  finished_at: z.string(),
});
export type Marker = z.output<typeof MarkerSchema>;
/** The files a marker vouches for. */
export type MarkerFiles = Pick<Marker, 'shard' | 'megatron'>;

/** Every file of a marker's shard, the shard first. */
export function markerFiles(marker: MarkerFiles): FileRef[] {
  return marker.megatron ? [marker.shard, marker.megatron.idx, marker.megatron.meta] : [marker.shard];
}

export async function readMarker(outputPrefix: string, taskId: string): Promise<Marker | undefined> {
  const uri = joinUri(outputPrefix, markerKey(taskId));
  if (!(await storeFor(uri).stat(uri))) return undefined;
  return parseWith(MarkerSchema, parseJson(await readText(uri), uri), uri);
}

/**
 * The first marker under the prefix, if any: one listing page and one read, enough to learn which format a prefix
 * already holds (every marker of a prefix has the same format).
 */
export async function anyMarker(outputPrefix: string): Promise<Marker | undefined> {
  const prefix = joinUri(outputPrefix, MARKERS_DIR);
  for await (const info of storeFor(prefix).list(prefix)) {
    if (taskIdOfMarker(info.uri) !== undefined)
      return parseWith(MarkerSchema, parseJson(await readText(info.uri), info.uri), info.uri);
  }
  return undefined;
}

/** Task ids that have a marker: one listing of `markers/`, not one request per task. */
export async function listDoneTaskIds(outputPrefix: string): Promise<Set<string>> {
  const prefix = joinUri(outputPrefix, MARKERS_DIR);
  const done = new Set<string>();
  for await (const info of storeFor(prefix).list(prefix)) {
    const taskId = taskIdOfMarker(info.uri.slice(info.uri.lastIndexOf('/') + 1));
    if (taskId !== undefined) done.add(taskId);
  }
  return done;
}
