import { spawn } from 'node:child_process';
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createGunzip, gunzipSync } from 'node:zlib';
import { synthLegacyDump, synthPartsDump } from '../../src/dumps/synth.js';
import { benchCacheDir, realSamplePath } from './paths.js';

/** A file of article texts, one JSON string per line, shared by every tokenizer probe (JS and Python). */
export interface TextCorpus {
  path: string;
  docs: number;
  bytes: number;
  source: string;
}

interface SampleDoc {
  index: string;
  doc: Record<string, unknown>;
}

function readRealSample(): SampleDoc[] {
  if (!existsSync(realSamplePath)) {
    throw new Error(`real sample not found at ${realSamplePath}; the bench needs it until synth is available`);
  }
  const lines = gunzipSync(readFileSync(realSamplePath))
    .toString('utf8')
    .split('\n')
    .filter((l) => l.length > 0);
  const docs: SampleDoc[] = [];
  for (let i = 0; i + 1 < lines.length; i += 2) {
    docs.push({ index: lines[i]!, doc: JSON.parse(lines[i + 1]!) as Record<string, unknown> });
  }
  return docs;
}

/**
 * Article texts of at least targetBytes (UTF-8), built from the real Wikibooks sample's `text` and
 * `source_text` fields repeated in order. Cached by size.
 */
export async function ensureTextCorpus(targetBytes: number): Promise<TextCorpus> {
  const path = join(benchCacheDir('inputs'), `texts-sample-${targetBytes}.jsonl`);
  const metaPath = `${path}.meta.json`;
  if (existsSync(path) && existsSync(metaPath)) return JSON.parse(readFileSync(metaPath, 'utf8')) as TextCorpus;
  const texts: string[] = [];
  for (const { doc } of readRealSample()) {
    for (const field of ['text', 'source_text']) {
      const t = doc[field];
      if (typeof t === 'string' && t.length > 0) texts.push(t);
    }
  }
  const lines: string[] = [];
  let bytes = 0;
  let docs = 0;
  while (bytes < targetBytes) {
    for (const t of texts) {
      lines.push(JSON.stringify(t));
      bytes += Buffer.byteLength(t);
      docs++;
      if (bytes >= targetBytes) break;
    }
  }
  await writeFile(`${path}.tmp`, lines.join('\n') + '\n');
  await rename(`${path}.tmp`, path);
  const corpus: TextCorpus = {
    path,
    docs,
    bytes,
    source: 'real sample (simplewikibooks, text + source_text) repeated',
  };
  await writeFile(metaPath, JSON.stringify(corpus));
  return corpus;
}

/** A CirrusSearch-format dump (index line + doc line per page) in one compression format. */
export interface DumpFile {
  path: string;
  format: 'gzip' | 'bzip2';
  compressedBytes: number;
  uncompressedBytes: number;
  docs: number;
  source: string;
}

export interface SynthSpec {
  docs: number;
  format: 'gzip' | 'bzip2';
  /** Fixed per input, so every bench run (and every machine) measures the same bytes. */
  seed?: number;
  /** One page of this many MB of text in the middle (the memory figure's input). */
  bigPageMb?: number;
}

async function uncompressedSize(path: string, format: 'gzip' | 'bzip2'): Promise<number> {
  let n = 0;
  const source = createReadStream(path, { highWaterMark: 1 << 20 });
  if (format === 'gzip') {
    for await (const chunk of source.pipe(createGunzip())) n += (chunk as Buffer).length;
    return n;
  }
  const child = spawn('bzip2', ['-dc', path], { stdio: ['ignore', 'pipe', 'inherit'] });
  for await (const chunk of child.stdout) n += (chunk as Buffer).length;
  return n;
}

/**
 * A synthetic dump from our own `synth` (Zipf vocabulary, non-ASCII, both index-line forms, a heavy tail of page
 * sizes), cached by its parameters: a legacy single-member .json.gz, or one .json.bz2 part of the current layout.
 */
export async function ensureSynthDump(spec: SynthSpec): Promise<DumpFile> {
  const seed = spec.seed ?? 7;
  const big = spec.bigPageMb ?? 0;
  const stem = `synth-${spec.docs}-s${seed}${big > 0 ? `-big${big}` : ''}`;
  const dir = benchCacheDir('inputs');
  const metaPath = join(dir, `${stem}.${spec.format}.meta.json`);
  if (existsSync(metaPath)) {
    const cached = JSON.parse(readFileSync(metaPath, 'utf8')) as DumpFile;
    if (existsSync(cached.path)) return cached;
  }
  const options = { docs: spec.docs, seed, wiki: 'synthwiki', members: 1, parts: 1, bigPageMb: big };
  let path: string;
  if (spec.format === 'gzip') {
    path = join(dir, `${stem}.json.gz`);
    await synthLegacyDump(`${path}.tmp`, options);
    await rename(`${path}.tmp`, path);
  } else {
    const folder = join(dir, `${stem}-parts`);
    await rm(folder, { recursive: true, force: true });
    const files = await synthPartsDump(folder, options);
    path = files[0]!;
  }
  const dump: DumpFile = {
    path,
    format: spec.format,
    compressedBytes: statSync(path).size,
    uncompressedBytes: await uncompressedSize(path, spec.format),
    docs: spec.docs,
    source: `tokenize-wiki synth --docs ${spec.docs} --seed ${seed}${big > 0 ? ` --big-page-mb ${big}` : ''}`,
  };
  await writeFile(metaPath, JSON.stringify(dump));
  return dump;
}

/** The non-empty `field` texts of a gzip dump, as a text corpus: the tokenizer-only side of the pipeline ratio. */
export async function ensureTextsOfDump(dump: DumpFile, field = 'text'): Promise<TextCorpus> {
  const path = `${dump.path}.${field}.jsonl`;
  const metaPath = `${path}.meta.json`;
  if (existsSync(path) && existsSync(metaPath)) return JSON.parse(readFileSync(metaPath, 'utf8')) as TextCorpus;
  if (dump.format !== 'gzip') throw new Error(`texts of a ${dump.format} dump are not supported`);
  const lines = gunzipSync(readFileSync(dump.path)).toString('utf8').split('\n');
  const out: string[] = [];
  let bytes = 0;
  for (let i = 1; i < lines.length; i += 2) {
    if (lines[i]!.length === 0) continue;
    const t = (JSON.parse(lines[i]!) as Record<string, unknown>)[field];
    if (typeof t === 'string' && t.length > 0) {
      out.push(JSON.stringify(t));
      bytes += Buffer.byteLength(t);
    }
  }
  await writeFile(`${path}.tmp`, out.join('\n') + '\n');
  await rename(`${path}.tmp`, path);
  const corpus: TextCorpus = { path, docs: out.length, bytes, source: `field '${field}' of ${dump.path}` };
  await writeFile(metaPath, JSON.stringify(corpus));
  return corpus;
}

/** The main synthetic dump, shared by the decode, pipeline and scaling sections (same docs in either format). */
export function mainDump(quick: boolean, format: 'gzip' | 'bzip2'): Promise<DumpFile> {
  return ensureSynthDump({ docs: quick ? 200 : 6000, format });
}
