import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { z } from 'zod';
import { InputError, TaskFailure, parseJson, parseWith } from '../errors/index.js';
import type { Manifest } from '../manifest/index.js';
import { joinUri, readBytes, readText, storeFor } from '../storage/index.js';
import { readMarker, type FileRef, type Marker } from './marker.js';
import { verifyRun } from './verify-run.js';
import {
  concatIdx,
  decodeIdx,
  dtypeFor,
  idxBytes,
  partPrefix,
  planParts,
  type MegatronDtype,
  type PartPlan,
} from '../output/index.js';

export interface ExportOptions {
  manifest: Manifest;
  manifestUri: string;
  outputPrefix: string;
  /** Dataset prefix: `<to>.bin`, `<to>.idx`, `<to>.meta.jsonl.gz` (or `<to>_NNNNN.*` per part with a cap). */
  to: string;
  maxPartBytes?: number;
  onPart?: (part: ExportedPart, kept: boolean) => void;
}

const count = z.number().int().nonnegative();
const ExportedFileSchema = z.object({ uri: z.string(), bytes: count, sha256: z.string() });
const ExportedPartSchema = z.object({
  index: count,
  /** Megatron's data path of the part: the `.bin`/`.idx` names without their suffix. */
  prefix: z.string(),
  sequences: count,
  tasks: z.object({ first: z.string(), last: z.string(), count }).optional(),
  bin: ExportedFileSchema,
  idx: ExportedFileSchema,
  meta: ExportedFileSchema,
});
export type ExportedPart = z.infer<typeof ExportedPartSchema>;

/** `<to>.export.json`: what an export was made from and the parts written so far; rewritten after each part. */
const ExportRecordSchema = z.object({
  format: z.literal('tokenize-wiki/export'),
  version: z.literal(1),
  manifest_uri: z.string(),
  output_prefix: z.string(),
  encoding: z.string(),
  dtype: z.enum(['uint16', 'int32']),
  max_part_bytes: count.nullable(),
  /** sha256 over the shards' marker digests and the cap: a record of another run or cap is never resumed. */
  source_sha256: z.string(),
  sequences: count,
  tokens: count,
  parts: z.array(ExportedPartSchema),
  complete: z.boolean(),
});
export type ExportRecord = z.infer<typeof ExportRecordSchema>;

export const exportRecordUri = (to: string): string => `${to}.export.json`;

/**
 * Concatenate a finished megatron run's shards, in manifest order, into one Megatron dataset (or parts of whole
 * shards under a size cap). Streamed: shard bytes flow from the store into the upload, and the index is built from
 * the shards' indexes read twice, so memory does not grow with the run. Resumable per part: each finished part is
 * recorded in `<to>.export.json`, a re-run keeps those whose files are still there and writes the rest, and the same
 * shards always give the same bytes.
 */
export async function exportRun(options: ExportOptions): Promise<ExportRecord> {
  const { manifest, outputPrefix, to } = options;
  if (manifest.output_format !== 'megatron') {
    throw new InputError(
      `${options.manifestUri}: the run's output format is ${manifest.output_format}; export concatenates megatron shards. ` +
        'Run the dumps again with --format megatron into another output prefix, then export that',
    );
  }
  const report = await verifyRun(manifest, outputPrefix, { deep: false });
  if (!report.ok) {
    const why =
      report.missing.length > 0
        ? `${report.missing.length} task(s) have no marker (e.g. ${report.missing[0]})`
        : (report.problems[0] as string);
    throw new InputError(`${outputPrefix}: the run is not complete (${why}); finish it (verify OK) before exporting`);
  }
  const markers: Marker[] = [];
  for (const task of manifest.tasks) markers.push((await readMarker(outputPrefix, task.task_id)) as Marker);
  const dtype = dtypeFor(manifest.encoding);
  const extents = markers.map((m) => ({ task_id: m.task_id, bin_bytes: m.shard.bytes, sequences: m.rows }));
  const plan = planParts(extents, options.maxPartBytes);
  const capped = options.maxPartBytes !== undefined;

  const sourceSha256 = createHash('sha256')
    .update(
      JSON.stringify({
        shards: markers.map((m) => [m.task_id, m.shard.sha256, m.megatron?.idx.sha256, m.megatron?.meta.sha256]),
        cap: options.maxPartBytes ?? null,
      }),
    )
    .digest('hex');
  const record: ExportRecord = {
    format: 'tokenize-wiki/export',
    version: 1,
    manifest_uri: options.manifestUri,
    output_prefix: outputPrefix,
    encoding: manifest.encoding,
    dtype,
    max_part_bytes: options.maxPartBytes ?? null,
    source_sha256: sourceSha256,
    sequences: markers.reduce((n, m) => n + m.rows, 0),
    tokens: markers.reduce((n, m) => n + m.tokens, 0),
    parts: [],
    complete: false,
  };
  const earlier = await readRecord(to, sourceSha256);
  const recordUri = exportRecordUri(to);
  for (const part of plan) {
    const shards = markers.slice(part.first, part.end);
    const kept = earlier?.parts.find((p) => p.index === part.index);
    if (kept && (await stillThere(kept))) {
      record.parts.push(kept);
      options.onPart?.(kept, true);
      continue;
    }
    const written = await writePart(outputPrefix, partPrefix(to, part.index, capped), part, shards, dtype);
    record.parts.push(written);
    await storeFor(recordUri).write(recordUri, JSON.stringify(record, null, 1) + '\n');
    options.onPart?.(written, false);
  }
  record.complete = true;
  await storeFor(recordUri).write(recordUri, JSON.stringify(record, null, 1) + '\n');
  return record;
}

/** The record of an earlier export to the same place, if it was made from the same shards and cap. */
async function readRecord(to: string, sourceSha256: string): Promise<ExportRecord | undefined> {
  const uri = exportRecordUri(to);
  if (!(await storeFor(uri).stat(uri))) return undefined;
  const record = parseWith(ExportRecordSchema, parseJson(await readText(uri), uri), uri);
  if (record.source_sha256 !== sourceSha256) {
    throw new InputError(
      `${uri}: an export of other shards (or another --max-part-bytes) is already there; export to another --to, or delete its files and this record`,
    );
  }
  return record;
}

async function stillThere(part: ExportedPart): Promise<boolean> {
  for (const file of [part.bin, part.idx, part.meta]) {
    if ((await storeFor(file.uri).stat(file.uri))?.size !== file.bytes) return false;
  }
  return true;
}

async function writePart(
  outputPrefix: string,
  prefix: string,
  part: PartPlan,
  shards: readonly Marker[],
  dtype: MegatronDtype,
): Promise<ExportedPart> {
  const megatron = (m: Marker): NonNullable<Marker['megatron']> => {
    if (!m.megatron)
      throw new InputError(
        `${outputPrefix}: task ${m.task_id} has no megatron shard (its marker is of a ${m.output_format} shard)`,
      );
    if (m.megatron.dtype !== dtype)
      throw new InputError(`${outputPrefix}: task ${m.task_id} holds ${m.megatron.dtype} ids, others ${dtype}`);
    return m.megatron;
  };
  const lengths = async function* (): AsyncIterable<Int32Array> {
    for (const m of shards) {
      const idx = megatron(m).idx;
      yield decodeIdx(await readBytes(joinUri(outputPrefix, idx.key)), joinUri(outputPrefix, idx.key)).lengths;
    }
  };
  // .bin and .meta one after the other: each streams shard after shard, so two uploads at once gain little.
  const bin = await upload(
    `${prefix}.bin`,
    concatFiles(
      outputPrefix,
      shards.map((m) => m.shard),
    ),
  );
  const meta = await upload(
    `${prefix}.meta.jsonl.gz`,
    concatFiles(
      outputPrefix,
      shards.map((m) => megatron(m).meta),
    ),
  );
  const idx = await upload(`${prefix}.idx`, concatIdx(dtype, part.sequences, lengths));
  if (bin.bytes !== part.bin_bytes || idx.bytes !== idxBytes(part.sequences)) {
    throw new TaskFailure(
      `${prefix}: wrote ${bin.bytes} bytes of tokens and ${idx.bytes} of index, the markers promise ${part.bin_bytes} and ${idxBytes(part.sequences)}`,
    );
  }
  const first = shards[0];
  const last = shards[shards.length - 1];
  return {
    index: part.index,
    prefix,
    sequences: part.sequences,
    ...(first && last ? { tasks: { first: first.task_id, last: last.task_id, count: shards.length } } : {}),
    bin,
    idx,
    meta,
  };
}

/** The shard files' bytes back to back, each checked against its marker's size and sha256 as it streams by. */
async function* concatFiles(outputPrefix: string, files: readonly FileRef[]): AsyncGenerator<Buffer> {
  for (const file of files) {
    const uri = joinUri(outputPrefix, file.key);
    const hash = createHash('sha256');
    let bytes = 0;
    for await (const chunk of await storeFor(uri).read(uri)) {
      const buffer = chunk as Buffer;
      hash.update(buffer);
      bytes += buffer.length;
      yield buffer;
    }
    if (bytes !== file.bytes || hash.digest('hex') !== file.sha256) {
      throw new TaskFailure(
        `${uri}: ${bytes} bytes whose sha256 differs from its marker's (${file.bytes} bytes); run verify --deep`,
      );
    }
  }
}

async function upload(uri: string, chunks: AsyncIterable<Buffer>): Promise<ExportedPart['bin']> {
  const hash = createHash('sha256');
  let bytes = 0;
  const counted = async function* (): AsyncGenerator<Buffer> {
    for await (const chunk of chunks) {
      hash.update(chunk);
      bytes += chunk.length;
      yield chunk;
    }
  };
  await storeFor(uri).write(uri, Readable.from(counted(), { objectMode: false }));
  return { uri, bytes, sha256: hash.digest('hex') };
}
