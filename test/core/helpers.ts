import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { BatchInput } from '../../src/tokenize/batch.js';
import { repoRoot } from '../harness/paths.js';

/** The real CirrusSearch sample (never copied into the repo). */
export const SAMPLE = join(repoRoot, 'test', 'fixtures', 'simplewikibooks', 'simplewikibooks-sample-200.json.gz');

export function tempDir(label: string): string {
  return mkdtempSync(join(tmpdir(), `tw-core-${label}-`));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export const sha256 = (bytes: Uint8Array | string): string => createHash('sha256').update(bytes).digest('hex');

export interface ShardRow {
  page_id: number;
  title: string;
  namespace: number;
  wiki: string;
  revision: number | null;
  n_tokens: number;
  tokens: number[];
}

/** Every row of a (multi-member) gzip shard, in order. */
export function shardRows(bytes: Buffer): ShardRow[] {
  const text = gunzipSync(bytes).toString('utf8');
  return text === ''
    ? []
    : text
        .trimEnd()
        .split('\n')
        .map((line) => JSON.parse(line) as ShardRow);
}

/** Files under `dir` (relative name → {sha256, mtimeMs}), for "nothing was rewritten" checks. */
export function snapshot(dir: string): Map<string, { sha256: string; mtimeMs: number }> {
  const out = new Map<string, { sha256: string; mtimeMs: number }>();
  const walk = (sub: string): void => {
    for (const entry of readdirSync(join(dir, sub), { withFileTypes: true })) {
      const rel = sub ? `${sub}/${entry.name}` : entry.name;
      if (entry.isDirectory()) walk(rel);
      else out.set(rel, { sha256: sha256(readFileSync(join(dir, rel))), mtimeMs: statSync(join(dir, rel)).mtimeMs });
    }
  };
  walk('');
  return out;
}

/** The documents of a CirrusSearch dump as JSON lines (index line, document line, …). */
export function dumpLines(docs: ReadonlyArray<{ index: string; doc: string }>): string {
  return docs.map((d) => `${d.index}\n${d.doc}\n`).join('');
}

/** The pairs of a decoded dump: index line and parsed document. */
export function dumpDocs(decoded: string): Array<{ index: unknown; doc: Record<string, unknown> }> {
  const lines = decoded.split('\n').filter((l) => l !== '');
  const out: Array<{ index: unknown; doc: Record<string, unknown> }> = [];
  for (let i = 0; i + 1 < lines.length; i += 2)
    out.push({ index: JSON.parse(lines[i] as string), doc: JSON.parse(lines[i + 1] as string) });
  return out;
}

export const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A batch of the given dump lines (index line, document line, …), as the task executor would hand it over. */
export function batchInput(lines: string[], overrides: Partial<BatchInput> = {}): BatchInput {
  return {
    bytes: new TextEncoder().encode(lines.join('\n') + '\n'),
    firstLine: 11,
    firstOffset: 5000,
    dump: 'testwiki-20261122-legacy',
    wiki: 'testwiki',
    textField: 'text',
    appendEot: false,
    compressionLevel: 3,
    format: 'jsonl',
    ...overrides,
  };
}
