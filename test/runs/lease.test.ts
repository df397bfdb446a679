import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { StoreLease } from '../../src/runs/lease.js';
import { storeFor } from '../../src/storage/index.js';
import { freshBucket, s3Env } from '../harness/s3-env.js';

let bucket = '';
beforeAll(async () => {
  // The program's S3 client reads the standard environment, as in a pod.
  Object.assign(process.env, s3Env());
  bucket = await freshBucket('runs-lease');
});

async function generations(prefix: string): Promise<string[]> {
  const names: string[] = [];
  for await (const info of storeFor(prefix).list(prefix)) names.push(info.uri.slice(prefix.length));
  return names;
}

describe.each([
  ['s3', () => `s3://${bucket}/run-${Math.random().toString(36).slice(2, 8)}/state/lease/`],
  ['file', () => join(mkdtempSync(join(tmpdir(), 'tw-lease-')), 'state/lease/')],
])('store lease on %s', (_kind, prefixOf) => {
  it('lets exactly one of many simultaneous submitters take it', async () => {
    const prefix = prefixOf();
    const leases = Array.from({ length: 8 }, (_, i) => new StoreLease(prefix, `holder-${i}`, 60_000));
    const results = await Promise.all(leases.map((l) => l.acquire()));
    const winners = results.filter((r) => r.held);
    expect(winners).toHaveLength(1);
    const winner = winners[0]?.holder;
    for (const r of results.filter((x) => !x.held)) expect(r.holder).toBe(winner);
  });

  it('is renewed by its holder, refused to others until it expires or is released', async () => {
    let now = Date.parse('2026-11-28T10:00:00Z');
    const clock = (): number => now;
    const prefix = prefixOf();
    const a = new StoreLease(prefix, 'a', 60_000, clock);
    const b = new StoreLease(prefix, 'b', 60_000, clock);
    expect((await a.acquire()).held).toBe(true);
    expect(await b.acquire()).toEqual({ held: false, holder: 'a', expires_at: '2026-11-28T10:01:00.000Z' });
    now += 30_000;
    expect(await a.renew()).toBe(true);
    now += 45_000; // 75 s after taking it, 45 s after renewing: still a's
    expect((await b.acquire()).held).toBe(false);
    now += 20_000; // expired
    expect((await b.acquire()).held).toBe(true);
    // a was too slow: it must notice before acting.
    expect(await a.renew()).toBe(false);
    await b.release();
    expect((await a.acquire()).held).toBe(true);
    // Old generations are pruned: the current one and the one before it remain.
    expect((await generations(prefix)).length).toBeLessThanOrEqual(2);
  });
});
