import { TaskFailure } from '../errors/index.js';
import {
  Bzip2DataError,
  decodeBzip2,
  fastestBzip2Decoder,
  realignBzip2Blocks,
  GzipDataError,
  inflateFromAccessPoint,
} from '../dumps/index.js';
import { readBzip2Blocks, readGzipPoint, type DumpEntry, type Task } from '../manifest/index.js';
import { storeFor } from '../storage/index.js';

export interface TaskStream {
  decoded: AsyncIterable<Buffer>;
  /** Decoded bytes between where decoding starts and the task's first doc. */
  skipBytes: number;
}

/** Refuse to run against a dump that changed since the manifest was made: the shards would be wrong. */
export async function checkDumpUnchanged(dump: DumpEntry): Promise<void> {
  const now = await storeFor(dump.uri).stat(dump.uri);
  if (!now) throw new TaskFailure(`${dump.uri}: dump not found (the manifest lists it as dump ${dump.name})`);
  const changed =
    now.size !== dump.size || (dump.etag !== undefined && now.etag !== undefined && now.etag !== dump.etag);
  if (changed) {
    throw new TaskFailure(
      `${dump.uri}: the dump changed since the manifest was made (size ${dump.size} → ${now.size}, etag ${dump.etag ?? '-'} → ${now.etag ?? '-'}); re-create the manifest`,
    );
  }
}

/**
 * Decoded bytes for a task, starting at its access point: a ranged read of only the compressed bytes the task needs
 * (never the file from its start), decoded from there.
 */
export async function openTaskStream(task: Task, dump: DumpEntry, manifestFolder: string): Promise<TaskStream> {
  const what = `${dump.uri} (task ${task.task_id})`;
  const access = task.access;
  const store = storeFor(dump.uri);
  switch (access.kind) {
    case 'gzip': {
      const point = await readGzipPoint(manifestFolder, access.index);
      const source = await store.read(dump.uri, { start: access.compressed_offset, end: access.compressed_end });
      return {
        decoded: explainErrors(inflateFromAccessPoint(point, source), what),
        skipBytes: task.uncompressed_start - access.uncompressed_offset,
      };
    }
    case 'bzip2': {
      const blocks = await readBzip2Blocks(manifestFolder, access.index);
      const run = blocks.slice(access.first_block, access.end_block);
      const source = await store.read(dump.uri, { start: access.compressed_offset, end: access.compressed_end });
      return {
        decoded: explainErrors(decodeBzip2(realignBzip2Blocks(run, source), fastestBzip2Decoder()), what),
        skipBytes: task.uncompressed_start - access.uncompressed_offset,
      };
    }
  }
}

/** Codec errors become task failures that name the dump and task. */
async function* explainErrors(decoded: AsyncIterable<Buffer>, what: string): AsyncIterable<Buffer> {
  try {
    yield* decoded;
  } catch (error) {
    if (error instanceof GzipDataError || error instanceof Bzip2DataError)
      throw new TaskFailure(`${what}: ${error.message}`);
    throw error;
  }
}
