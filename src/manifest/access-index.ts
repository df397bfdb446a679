import { gunzipSync, gzipSync } from 'node:zlib';
import { z } from 'zod';
import { parseJson, parseWith } from '../errors/index.js';
import { type Bzip2Block, validateAccessPoint, type GzipAccessPoint } from '../dumps/index.js';
import { joinUri, readBytes, storeFor } from '../storage/index.js';

/**
 * The access index: the files beside the manifest that let a task start decoding in the middle of a dump. The
 * manifest pass writes them, a task reads them; both go through this module, so their format lives in one place.
 * gzip: one access point per task (`index/<dump>/gzip-NNNNNN.ap.gz`). bzip2: one list of every block of the dump
 * (`index/<dump>/bzip2-blocks.json.gz`); a task slices its own run out of it.
 */

/** `key` is relative to the manifest's folder (`gzipPointKey` of the output layout). */
export async function writeGzipPoint(manifestFolder: string, key: string, point: GzipAccessPoint): Promise<void> {
  await storeFor(manifestFolder).write(joinUri(manifestFolder, key), gzipSync(encodeAccessPoint(point)));
}

export async function readGzipPoint(manifestFolder: string, key: string): Promise<GzipAccessPoint> {
  return decodeAccessPoint(gunzipSync(await readBytes(joinUri(manifestFolder, key))));
}

/** `key` is relative to the manifest's folder (`bzip2BlocksKey` of the output layout). */
export async function writeBzip2Blocks(
  manifestFolder: string,
  key: string,
  blocks: readonly Bzip2Block[],
): Promise<void> {
  await storeFor(manifestFolder).write(joinUri(manifestFolder, key), gzipSync(JSON.stringify(blocks)));
}

export async function readBzip2Blocks(manifestFolder: string, key: string): Promise<Bzip2Block[]> {
  const uri = joinUri(manifestFolder, key);
  return parseWith(BlockListSchema, parseJson(gunzipSync(await readBytes(uri)).toString('utf8'), uri), uri);
}

const BlockListSchema = z.array(
  z.object({
    bitOffset: z.number().int().nonnegative(),
    bitLength: z.number().int().positive(),
    blockCrc: z.number().int(),
    level: z.number().int().min(1).max(9),
    stream: z.number().int().nonnegative(),
    streamCrc: z.number().int().optional(),
  }),
) satisfies z.ZodType<Bzip2Block[]>;

// A gzip access point's file: "TWGA", version, bitOffset, u64 compressedOffset, u64 uncompressedOffset,
// u32 window length, window bytes (all little-endian). Callers may gzip a file of these.
const AP_MAGIC = Buffer.from('TWGA');
const AP_VERSION = 1;
const AP_HEADER_BYTES = 4 + 1 + 1 + 8 + 8 + 4;

export function encodeAccessPoint(ap: GzipAccessPoint): Buffer {
  validateAccessPoint(ap);
  const buf = Buffer.alloc(AP_HEADER_BYTES + ap.window.length);
  AP_MAGIC.copy(buf, 0);
  buf.writeUInt8(AP_VERSION, 4);
  buf.writeUInt8(ap.bitOffset, 5);
  buf.writeBigUInt64LE(BigInt(ap.compressedOffset), 6);
  buf.writeBigUInt64LE(BigInt(ap.uncompressedOffset), 14);
  buf.writeUInt32LE(ap.window.length, 22);
  ap.window.copy(buf, AP_HEADER_BYTES);
  return buf;
}

export function decodeAccessPoint(buf: Uint8Array): GzipAccessPoint {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.length < AP_HEADER_BYTES || !b.subarray(0, 4).equals(AP_MAGIC)) {
    throw new Error('not a gzip access point (bad magic or too short)');
  }
  const version = b.readUInt8(4);
  if (version !== AP_VERSION)
    throw new Error(`unsupported gzip access point version ${version} (expected ${AP_VERSION})`);
  const windowLength = b.readUInt32LE(22);
  if (b.length !== AP_HEADER_BYTES + windowLength) {
    throw new Error(`gzip access point is ${b.length} bytes, expected ${AP_HEADER_BYTES + windowLength}`);
  }
  const ap: GzipAccessPoint = {
    bitOffset: b.readUInt8(5),
    compressedOffset: toSafeNumber(b.readBigUInt64LE(6), 'compressedOffset'),
    uncompressedOffset: toSafeNumber(b.readBigUInt64LE(14), 'uncompressedOffset'),
    window: Buffer.from(b.subarray(AP_HEADER_BYTES)),
  };
  validateAccessPoint(ap);
  return ap;
}

function toSafeNumber(v: bigint, what: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`gzip access point: ${what} ${v} is too large`);
  return Number(v);
}
