// Job ids: built by names.ts, read back (batch number, manifest job) by the submitter.
import { describe, expect, it } from 'vitest';
import { batchOf, isManifestJobId, jobId, manifestJobId, MAX_JOB_NAME } from '../../src/runs/names.js';

describe('job ids', () => {
  it('are label-safe, at most 47 characters, and keep long run ids apart', () => {
    const long = 'a'.repeat(40) + '-x';
    const other = 'a'.repeat(40) + '-y';
    for (const id of [jobId('enwiki-20261122-cl100k', 12, 1), jobId(long, 1, 3), jobId('a'.repeat(63), 123_456, 10)]) {
      expect(id.length).toBeLessThanOrEqual(MAX_JOB_NAME);
      expect(id).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    }
    expect(jobId(long, 1, 1)).not.toBe(jobId(other, 1, 1));
    expect(jobId('enwiki-20261122-cl100k', 12, 2)).toBe('enwiki-20261122-cl100k-b00012-a2');
    expect(batchOf(jobId(long, 77, 1))).toBe(77);
  });
});

describe('manifest job ids', () => {
  it('round-trip: a manifest job id is recognised, a batch job id is not, and neither is cut past 47 characters', () => {
    for (const run of ['enwiki-20261122-cl100k', 'a'.repeat(63)]) {
      const manifest = manifestJobId(run, 12);
      expect(manifest.length).toBeLessThanOrEqual(MAX_JOB_NAME);
      expect(isManifestJobId(manifest)).toBe(true);
      expect(batchOf(manifest)).toBeUndefined();
      expect(isManifestJobId(jobId(run, 3, 1))).toBe(false);
    }
  });
});
