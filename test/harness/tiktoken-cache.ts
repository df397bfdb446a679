import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { cacheRoot, repoRoot } from './paths.js';

/** The BPE files Python tiktoken downloads at first use; the npm `tiktoken` package ships the same ranks. */
const ENCODINGS = ['r50k_base', 'p50k_base', 'cl100k_base', 'o200k_base'] as const;
export type CachedEncoding = (typeof ENCODINGS)[number];

export function tiktokenUrl(encoding: CachedEncoding): string {
  return `https://openaipublic.blob.core.windows.net/encodings/${encoding}.tiktoken`;
}

const NpmRanks = z.object({ bpe_ranks: z.string() });

/**
 * Rebuilds the `.tiktoken` file (one `base64token rank` line per token, by rank) from the npm package's
 * compressed ranks, whose lines read `<label> <first rank> <token> <token> …` with consecutive ranks.
 */
export function tiktokenFile(
  encoding: CachedEncoding,
  npmDir: string = join(repoRoot, 'node_modules', 'tiktoken'),
): Buffer {
  const source = join(npmDir, 'encoders', `${encoding}.json`);
  const parsed = NpmRanks.safeParse(JSON.parse(readFileSync(source, 'utf8')));
  if (!parsed.success) throw new Error(`${source}: key "bpe_ranks": missing or not a string`);
  const lines: string[] = [];
  for (const [lineNo, line] of parsed.data.bpe_ranks.split('\n').entries()) {
    if (line === '') continue;
    const [, first, ...tokens] = line.split(' ');
    const start = Number(first);
    if (!Number.isInteger(start)) throw new Error(`${source}: bpe_ranks line ${lineNo + 1}: bad rank "${first}"`);
    tokens.forEach((token, i) => lines.push(`${token} ${start + i}\n`));
  }
  return Buffer.from(lines.join(''), 'utf8');
}

/**
 * A TIKTOKEN_CACHE_DIR with which Python `tiktoken.get_encoding(...)` works offline: Python tiktoken names each
 * cached file by the sha1 of its download URL and checks its sha256 against `expectedSha256` when given.
 */
export function ensureTiktokenCache(
  expectedSha256: Partial<Record<CachedEncoding, string>> = {},
  dir: string = join(cacheRoot(), 'tiktoken-cache'),
): string {
  mkdirSync(dir, { recursive: true });
  for (const encoding of ENCODINGS) {
    const target = join(dir, createHash('sha1').update(tiktokenUrl(encoding)).digest('hex'));
    if (existsSync(target)) continue;
    const data = tiktokenFile(encoding);
    const expected = expectedSha256[encoding];
    const actual = createHash('sha256').update(data).digest('hex');
    // A mismatch would make Python tiktoken fall back to downloading, which the tests must never do.
    if (expected !== undefined && expected !== actual) {
      throw new Error(`rebuilt ${encoding}.tiktoken has sha256 ${actual}, Python tiktoken expects ${expected}`);
    }
    writeFileSync(`${target}.tmp`, data);
    renameSync(`${target}.tmp`, target);
  }
  return dir;
}

/** The sha256 of each encoding file as pinned in an installed Python tiktoken (tiktoken_ext/openai_public.py). */
export function pythonTiktokenHashes(openaiPublicPy: string): Partial<Record<CachedEncoding, string>> {
  const source = readFileSync(openaiPublicPy, 'utf8');
  const hashes: Partial<Record<CachedEncoding, string>> = {};
  for (const encoding of ENCODINGS) {
    const at = source.indexOf(`/${encoding}.tiktoken"`);
    const match = at < 0 ? null : /expected_hash="([0-9a-f]{64})"/.exec(source.slice(at, at + 300));
    if (match?.[1] !== undefined) hashes[encoding] = match[1];
  }
  return hashes;
}
