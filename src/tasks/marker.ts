import { z } from 'zod';
import { parseJson, parseWith } from '../config/validate.js';
import { joinUri, readText, storeFor } from '../storage/index.js';
import { ENCODINGS } from '../tokenize/encodings.js';

const count = z.number().int().nonnegative();

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
  shard: z.object({ key: z.string(), bytes: count, sha256: z.string() }),
  encoding: z.enum(ENCODINGS),
  text_field: z.string(),
  append_eot: z.boolean(),
  program_version: z.string(),
  started_at: z.string(),
  finished_at: z.string(),
});
export type Marker = z.infer<typeof MarkerSchema>;

export const shardKey = (taskId: string): string => `shards/${taskId}.jsonl.gz`;
export const markerKey = (taskId: string): string => `markers/${taskId}.json`;

export async function readMarker(outputPrefix: string, taskId: string): Promise<Marker | undefined> {
  const uri = joinUri(outputPrefix, markerKey(taskId));
  if (!(await storeFor(uri).stat(uri))) return undefined;
  return parseWith(MarkerSchema, parseJson(await readText(uri), uri), uri);
}

/** Task ids that have a marker: one listing of `markers/`, not one request per task. */
export async function listDoneTaskIds(outputPrefix: string): Promise<Set<string>> {
  const prefix = joinUri(outputPrefix, 'markers/');
  const done = new Set<string>();
  for await (const info of storeFor(prefix).list(prefix)) {
    const name = info.uri.slice(info.uri.lastIndexOf('/') + 1);
    if (name.endsWith('.json')) done.add(name.slice(0, -'.json'.length));
  }
  return done;
}
