import { z } from 'zod';
import { parseJson, parseWith } from '../errors/index.js';
import { readText, storeFor } from '../storage/index.js';

/**
 * Written beside the staged copy only after it was fully written and verified: a file is staged if and only if its
 * record exists, says so, and still matches the source (size, ETag / Last-Modified) and the copy's size.
 */
export const StagingRecordSchema = z.object({
  format: z.literal('tokenize-wiki/staging-record'),
  version: z.literal(1),
  name: z.string(),
  source: z.string(),
  destination: z.string(),
  size: z.number().int().nonnegative(),
  etag: z.string().optional(),
  last_modified: z.string().optional(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** The format's own checks that passed: every gzip member's CRC32 and ISIZE, or every bzip2 block and stream CRC. */
  format_check: z.enum(['gzip-crc32-isize', 'bzip2-block-stream-crc']),
  /** The user-supplied sha256 the copy was checked against, if any. */
  expected_sha256: z.string().optional(),
  verified: z.literal(true),
  program_version: z.string(),
  staged_at: z.string(),
});
export type StagingRecord = z.infer<typeof StagingRecordSchema>;

export async function readStagingRecord(uri: string): Promise<StagingRecord | undefined> {
  if (!(await storeFor(uri).stat(uri))) return undefined;
  return parseWith(StagingRecordSchema, parseJson(await readText(uri), uri), uri);
}

export async function writeStagingRecord(uri: string, record: StagingRecord): Promise<void> {
  await storeFor(uri).write(uri, JSON.stringify(record, null, 2) + '\n');
}

/**
 * Why a record no longer vouches for the staged copy of `source`, or undefined if it still does. A server that
 * reports neither an ETag nor a Last-Modified can only be compared by size.
 */
export function staleReason(
  record: StagingRecord,
  source: { size: number; etag?: string; lastModified?: string },
  expectedSha256?: string,
): string | undefined {
  if (record.size !== source.size) return `source size changed (${record.size} → ${source.size} bytes)`;
  if (source.etag !== undefined && record.etag !== undefined && source.etag !== record.etag) {
    return `source ETag changed (${record.etag} → ${source.etag})`;
  }
  if (
    source.lastModified !== undefined &&
    record.last_modified !== undefined &&
    source.lastModified !== record.last_modified
  ) {
    return `source Last-Modified changed (${record.last_modified} → ${source.lastModified})`;
  }
  if (expectedSha256 !== undefined && record.sha256 !== expectedSha256) {
    return `the staged copy's sha256 ${record.sha256} differs from the expected ${expectedSha256}`;
  }
  return undefined;
}
