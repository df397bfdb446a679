import { availableParallelism } from 'node:os';
import { TaskFailure } from '../errors/index.js';
import {
  Bzip2DataError,
  decodeBzip2Blocks,
  type Bzip2Block,
  GzipDataError,
  inflateWithAccessPoints,
  type DumpFile,
} from '../dumps/index.js';
import { joinUri, storeFor } from '../storage/index.js';
import { TaskCutter, taskId, toScan, type DumpScan, type ManifestOptions } from './build.js';
import type { Access, Task } from './schema.js';

import { bzip2BlocksKey, gzipPointKey } from '../output/index.js';
import { writeBzip2Blocks, writeGzipPoint } from './access-index.js';

/**
 * gzip: one inflate pass that reports deflate block boundaries. At each task start the pass saves an access point
 * (zran-style: bit position + the preceding 32 KiB window), so a task inflates only its own stretch of the file.
 */
export async function scanGzipDump(
  dump: DumpFile,
  options: ManifestOptions,
  manifestFolder: string,
): Promise<DumpScan> {
  const cutter = new TaskCutter(options.maxDocsPerTask, options.maxTaskBytes);
  const starts: Array<{ key: string; compressed_offset: number; uncompressed_offset: number }> = [];
  const ends: number[] = []; // compressed end per task, known once the next piece starts
  let endedInPiece = 0; // tasks that ended in the current piece
  const writes: Array<Promise<void>> = [];
  const store = storeFor(manifestFolder);
  for await (const piece of inflateWithAccessPoints(await storeFor(dump.uri).read(dump.uri))) {
    // Tasks that ended in the previous piece need the compressed bytes up to this piece's start (+1 mid-byte).
    for (; endedInPiece > 0; endedInPiece--) ends.push(piece.compressedOffset + (piece.bitOffset > 0 ? 1 : 0));
    cutter.onTaskStart = () => {
      const point = piece.accessPoint();
      const key = gzipPointKey(dump.name, starts.length);
      writes.push(writeGzipPoint(manifestFolder, key, point));
      starts.push({ key, compressed_offset: point.compressedOffset, uncompressed_offset: point.uncompressedOffset });
    };
    cutter.onTaskEnd = () => endedInPiece++;
    cutter.push(piece.data);
  }
  cutter.onTaskStart = undefined;
  const cuts = cutter.finish();
  for (; endedInPiece > 0; endedInPiece--) ends.push(dump.size);
  await Promise.all(writes);
  // The start reported after the last doc belongs to no task: drop its point file.
  for (const unused of starts.slice(cuts.length)) await store.delete(joinUri(manifestFolder, unused.key));
  const tasks: Task[] = cuts.map((cut, i) => {
    const start = starts[i];
    const end = ends[i];
    if (!start || end === undefined) throw new Error(`internal: no gzip access point for task ${i} of ${dump.name}`);
    const access: Access = {
      kind: 'gzip',
      index: start.key,
      compressed_offset: start.compressed_offset,
      compressed_end: end,
      uncompressed_offset: start.uncompressed_offset,
    };
    return { ...cut, task_id: taskId(dump.name, i), dump: dump.name, access };
  });
  return toScan(dump, cutter, tasks);
}

/**
 * bzip2: blocks are independent, so an access point is just a block's bit offset. The pass decodes every block
 * (in parallel `bzip2` processes) to learn where docs fall; a task later decodes only its own run of blocks.
 */
export async function scanBzip2Dump(
  dump: DumpFile,
  options: ManifestOptions,
  manifestFolder: string,
): Promise<DumpScan> {
  const cutter = new TaskCutter(options.maxDocsPerTask, options.maxTaskBytes);
  const blocks: Bzip2Block[] = [];
  const starts: Array<{ block: number; uncompressed_offset: number }> = [];
  const ends: number[] = []; // exclusive end block per task
  const source = await storeFor(dump.uri).read(dump.uri);
  const concurrency = Math.max(1, Math.min(availableParallelism(), 4));
  for await (const item of decodeBzip2Blocks(source, { withData: true, concurrency })) {
    const index = blocks.length;
    blocks.push(item.block);
    cutter.onTaskStart = () => starts.push({ block: index, uncompressed_offset: item.uncompressedOffset });
    cutter.onTaskEnd = () => ends.push(index + 1);
    for (const data of item.data ?? []) cutter.push(data);
  }
  cutter.onTaskStart = undefined;
  cutter.onTaskEnd = () => ends.push(blocks.length);
  const cuts = cutter.finish();
  const key = bzip2BlocksKey(dump.name);
  await writeBzip2Blocks(manifestFolder, key, blocks);
  const tasks: Task[] = cuts.map((cut, i) => {
    const start = starts[i];
    const endBlock = ends[i];
    if (!start || endBlock === undefined)
      throw new Error(`internal: no bzip2 block range for task ${i} of ${dump.name}`);
    const last = blocks[endBlock - 1] as Bzip2Block;
    return {
      ...cut,
      task_id: taskId(dump.name, i),
      dump: dump.name,
      access: {
        kind: 'bzip2',
        index: key,
        first_block: start.block,
        end_block: endBlock,
        compressed_offset: Math.floor((blocks[start.block] as Bzip2Block).bitOffset / 8),
        compressed_end: Math.ceil((last.bitOffset + last.bitLength) / 8),
        uncompressed_offset: start.uncompressed_offset,
      },
    };
  });
  return toScan(dump, cutter, tasks);
}

export async function scanDump(dump: DumpFile, options: ManifestOptions, manifestFolder: string): Promise<DumpScan> {
  try {
    return await (dump.compression === 'gzip'
      ? scanGzipDump(dump, options, manifestFolder)
      : scanBzip2Dump(dump, options, manifestFolder));
  } catch (error) {
    // Codec errors know the byte offset but not the file: name the dump, as a task failure does.
    if (error instanceof GzipDataError || error instanceof Bzip2DataError)
      throw new TaskFailure(`${dump.uri}: ${error.message}`);
    throw error;
  }
}
