import './quiet-logs.js';
import { copyFileSync, existsSync, mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DumpServer } from './dump-server.js';
import {
  AGENT,
  LEGACY_NAME,
  LEGACY_PATH,
  PARTS_PATH,
  PART_NAMES,
  expectExit,
  filesUnder,
  mtimeOf,
  readRecord,
  removeDir,
  sha256,
  stage,
  startStageChild,
  synthTree,
} from './fixtures.js';

describe('stage from a local HTTP mirror to a local folder', () => {
  let root: string;
  let server: DumpServer;
  beforeAll(async () => {
    root = await synthTree('local');
    server = await DumpServer.start(root);
  });
  afterAll(async () => {
    await server?.close();
    removeDir(root);
  });

  const partsUrl = (): string => server.url(PARTS_PATH) + '/';
  const source = (name: string): Buffer => readFileSync(join(root, PARTS_PATH, name));

  it('stages a parts folder: same bytes, _SUCCESS last, ≤ 2 connections, resumes a dropped transfer from its last byte', async () => {
    const dest = join(root, 'staged-parts');
    server.resetCounts();
    server.dropOnce.add(`/${PARTS_PATH}/${PART_NAMES[1]}`);
    const result = expectExit(await stage(['--from', partsUrl(), '--to', dest, '--parallel', '3']), 0);
    expect(result.stdout).toMatch(/stage: 3 staged, 0 already staged, 0 failed; _SUCCESS copied/);

    const staged = filesUnder(dest);
    expect([...staged.keys()].sort()).toEqual(
      ['_SUCCESS', ...PART_NAMES.map((n) => `_staging/${n}.json`), ...PART_NAMES].sort(),
    );
    for (const name of PART_NAMES) {
      expect(sha256(staged.get(name) as Buffer), name).toBe(sha256(source(name)));
      expect(readRecord(dest, name)).toMatchObject({
        verified: true,
        size: source(name).length,
        sha256: sha256(source(name)),
        format_check: 'bzip2-block-stream-crc',
      });
    }
    // The connection cap held, and was reached: three files at once shared two connections.
    expect(server.maxConnections).toBe(2);
    // The dropped transfer continued with a Range request from where it broke, not from byte 0.
    const dropped = server.gets(PART_NAMES[1] as string).map((r) => r.range);
    expect(dropped).toHaveLength(2);
    const resumedAt = Number(/^bytes=(\d+)-/.exec(dropped[1] ?? '')?.[1]);
    expect(resumedAt).toBeGreaterThan(0);
    const total = PART_NAMES.reduce((sum, name) => sum + source(name).length, 0);
    expect(server.bytesSent).toBe(total);
    // _SUCCESS is fetched after every part, and every request carried the configured agent.
    expect(server.requests.filter((r) => r.method === 'GET').at(-1)?.path).toMatch(/\/_SUCCESS$/);
    expect(new Set(server.requests.map((r) => r.userAgent))).toEqual(new Set([AGENT]));
  });

  it('a second run is a no-op: no dump bytes are downloaded and nothing is rewritten', async () => {
    const dest = join(root, 'staged-parts');
    const before = PART_NAMES.map((name) => mtimeOf(join(dest, name)));
    server.resetCounts();
    const result = expectExit(await stage(['--from', partsUrl(), '--to', dest]), 0);
    expect(result.stdout).toMatch(/stage: 0 staged, 3 already staged, 0 failed; _SUCCESS present/);
    expect(server.requests.filter((r) => r.method === 'GET' && !r.path.endsWith('/'))).toEqual([]);
    expect(server.bytesSent).toBe(0);
    expect(PART_NAMES.map((name) => mtimeOf(join(dest, name)))).toEqual(before);
  });

  it('re-stages only a part whose source changed, and withdraws _SUCCESS meanwhile', async () => {
    const dest = join(root, 'staged-parts');
    const part = join(root, PARTS_PATH, PART_NAMES[2] as string);
    const original = readFileSync(part);
    // Same bytes but a new Last-Modified / ETag: the mirror republished the file.
    utimesSync(part, new Date(), new Date(Date.now() + 60_000));
    server.resetCounts();
    const result = expectExit(await stage(['--from', partsUrl(), '--to', dest]), 0);
    expect(result.stdout).toMatch(/stage: 1 staged, 2 already staged, 0 failed; _SUCCESS copied/);
    expect(server.gets(PART_NAMES[2] as string)).toHaveLength(1);
    expect(server.gets(PART_NAMES[0] as string)).toHaveLength(0);
    expect(sha256(readFileSync(join(dest, PART_NAMES[2] as string)))).toBe(sha256(original));
    expect(readRecord(dest, PART_NAMES[2] as string).last_modified).toBe(new Date(mtimeOf(part)).toUTCString());
  });

  it('resumes after the process is killed mid-transfer: staged parts are skipped, the interrupted one is staged again', async () => {
    const dest = join(root, 'staged-killed');
    const last = PART_NAMES[2] as string;
    server.stall.add(`/${PARTS_PATH}/${last}`);
    const { child, done } = startStageChild(['--from', partsUrl(), '--to', dest, '--parallel', '1']);
    try {
      // Killed while the last part is half written to its temp file.
      await vi.waitFor(
        () => expect([...filesUnder(dest).keys()].some((name) => name.startsWith(`${last}.tmp-`))).toBe(true),
        { timeout: 60_000, interval: 50 },
      );
    } finally {
      process.kill(-(child.pid as number), 'SIGKILL');
      await done;
      server.stall.clear();
    }
    const left = [...filesUnder(dest).keys()];
    expect(left).not.toContain(last);
    expect(left).not.toContain('_SUCCESS');
    expect(left.filter((name) => name.startsWith('_staging/'))).toHaveLength(2);

    server.resetCounts();
    const result = expectExit(await stage(['--from', partsUrl(), '--to', dest]), 0);
    expect(result.stdout).toMatch(/stage: 1 staged, 2 already staged, 0 failed; _SUCCESS copied/);
    expect(PART_NAMES.map((name) => server.gets(name).length)).toEqual([0, 0, 1]);
    // The killed run's temp file is gone; what is left is exactly the staged folder.
    expect([...filesUnder(dest).keys()].sort()).toEqual(
      ['_SUCCESS', ...PART_NAMES, ...PART_NAMES.map((n) => `_staging/${n}.json`)].sort(),
    );
    expect(sha256(readFileSync(join(dest, last)))).toBe(sha256(source(last)));
  });

  it('detects a corrupt bzip2 part: exit 1 naming it, the others staged, no _SUCCESS; a re-run stages only that part', async () => {
    const dest = join(root, 'staged-corrupt');
    const bad = PART_NAMES[0] as string;
    server.corrupt.add(`/${PARTS_PATH}/${bad}`);
    const failed = expectExit(await stage(['--from', partsUrl(), '--to', dest]), 1);
    expect(failed.stdout).toContain(`FAILED ${bad}: ${bad}: corrupt transfer: bzip2 check failed`);
    expect(failed.stdout).toMatch(/1 failed; _SUCCESS not copied/);
    expect([...filesUnder(dest).keys()].sort()).toEqual(
      [...PART_NAMES.slice(1), ...PART_NAMES.slice(1).map((n) => `_staging/${n}.json`)].sort(),
    );

    server.corrupt.clear();
    server.resetCounts();
    expectExit(await stage(['--from', partsUrl(), '--to', dest]), 0);
    expect(server.gets(bad)).toHaveLength(1);
    expect(server.gets(PART_NAMES[1] as string)).toHaveLength(0);
    expect(sha256(readFileSync(join(dest, bad)))).toBe(sha256(source(bad)));
    expect(existsSync(join(dest, '_SUCCESS'))).toBe(true);
  });

  it('stages a legacy file, checked against --sha256; a corrupt body or a wrong sha256 leaves nothing behind', async () => {
    const bytes = readFileSync(join(root, LEGACY_PATH));
    const url = server.url(LEGACY_PATH);

    const corruptDest = join(root, 'staged-legacy-corrupt');
    server.corrupt.add(`/${LEGACY_PATH}`);
    const corrupt = expectExit(await stage(['--from', url, '--to', corruptDest]), 1);
    server.corrupt.clear();
    expect(corrupt.stdout).toContain(`FAILED ${LEGACY_NAME}: ${LEGACY_NAME}: corrupt transfer: gzip check failed`);
    expect([...filesUnder(corruptDest).keys()]).toEqual([]);

    const wrong = expectExit(await stage(['--from', url, '--to', corruptDest, '--sha256', 'ab'.repeat(32)]), 1);
    expect(wrong.stdout).toContain(`sha256 is ${sha256(bytes)}, expected ${'ab'.repeat(32)}`);
    expect([...filesUnder(corruptDest).keys()]).toEqual([]);

    const dest = join(root, 'staged-legacy', LEGACY_NAME);
    expectExit(await stage(['--from', url, '--to', dest, '--sha256', sha256(bytes).toUpperCase()]), 0);
    expect(sha256(readFileSync(dest))).toBe(sha256(bytes));
    expect(readRecord(join(root, 'staged-legacy'), LEGACY_NAME)).toMatchObject({
      format_check: 'gzip-crc32-isize',
      expected_sha256: sha256(bytes),
    });
  });

  it('checks a parts folder against --sha256-file', async () => {
    const list = join(root, 'SHA256SUMS');
    writeFileSync(
      list,
      PART_NAMES.map((name, i) => `${i === 1 ? '00'.repeat(32) : sha256(source(name))}  ${name}\n`).join(''),
    );
    const dest = join(root, 'staged-sums');
    const result = expectExit(await stage(['--from', partsUrl(), '--to', dest, '--sha256-file', list]), 1);
    expect(result.stdout).toMatch(new RegExp(`FAILED ${PART_NAMES[1]}: .*expected ${'00'.repeat(32)}`));
    expect(result.stdout).toMatch(/2 staged, 0 already staged, 1 failed/);
  });

  it('stages from a local folder; one without _SUCCESS only with --allow-incomplete-dump, and then writes none', async () => {
    const folder = join(root, 'incomplete');
    mkdirSync(folder);
    for (const name of PART_NAMES.slice(0, 2)) copyFileSync(join(root, PARTS_PATH, name), join(folder, name));
    const dest = join(root, 'staged-incomplete');
    const refused = expectExit(await stage(['--from', folder, '--to', dest]), 2);
    expect(refused.stderr).toMatch(/_SUCCESS: missing.*--allow-incomplete-dump/);
    const result = expectExit(await stage(['--from', `file://${folder}`, '--to', dest, '--allow-incomplete-dump']), 0);
    expect(result.stdout).toMatch(/stage: 2 staged, 0 already staged, 0 failed; _SUCCESS none at the source/);
    expect([...filesUnder(dest).keys()].sort()).toEqual(
      [...PART_NAMES.slice(0, 2), ...PART_NAMES.slice(0, 2).map((n) => `_staging/${n}.json`)].sort(),
    );
  });

  it('bad usage and bad input exit 2 with a one-line reason', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--from', partsUrl(), '--to', 'https://example.org/x/'], /read-only/],
      [['--from', server.url(LEGACY_PATH), '--to', join(root, 'x'), '--sha256', 'xyz'], /--sha256.*64 hex digits/],
      [['--from', partsUrl(), '--to', join(root, 'x'), '--sha256', 'ab'.repeat(32)], /single dump file/],
      [
        [
          '--from',
          server.url('other/cirrussearch/20261122/missing-20261122-cirrussearch-content.json.gz'),
          '--to',
          join(root, 'x'),
        ],
        /not found/,
      ],
      [['--from', server.url('other/cirrus_search_index/20261122/'), '--to', join(root, 'x')], /no dump files/],
    ];
    for (const [args, message] of cases) {
      const result = expectExit(await stage(args), 2);
      expect(result.stderr, args.join(' ')).toMatch(message);
    }
    expect(existsSync(join(root, 'x'))).toBe(false);
  });
});
