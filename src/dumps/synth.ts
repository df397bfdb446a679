import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { once } from 'node:events';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';

export interface SynthOptions {
  docs: number;
  seed: number;
  wiki: string;
  /** Legacy layout: gzip members in the single file (Wikimedia wrote one; pigz-style tools write many). */
  members: number;
  /** Current layout: number of .json.bz2 parts in the folder. */
  parts: number;
  /** Insert one page of this many MB of text (memory tests). */
  bigPageMb: number;
}

/** Small, fast, seedable PRNG (mulberry32): the same seed gives byte-identical dumps (and replayable tests). */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SYLLABLES = [
  'ka',
  'ro',
  'mi',
  'ten',
  'sul',
  'var',
  'de',
  'lin',
  'qu',
  'ost',
  'ba',
  'el',
  'nor',
  'ith',
  'um',
  'zé',
  'ça',
  'ñu',
  'ø',
  'ü',
];
const FOREIGN = [
  '東京',
  'Москва',
  'Ελλάδα',
  'القاهرة',
  'मुंबई',
  '서울',
  'Zürich',
  'São Paulo',
  '🙂',
  '<|endoftext|>',
  '<|fim_prefix|>',
];

/** A Zipf-distributed vocabulary: a few very common words, a long tail of rare ones, like real article text. */
function vocabulary(rand: () => number, size: number): { words: string[]; cumulative: Float64Array } {
  const words: string[] = [
    'the',
    'of',
    'and',
    'in',
    'a',
    'is',
    'to',
    'was',
    'for',
    'on',
    'as',
    'by',
    'with',
    'from',
    'at',
  ];
  while (words.length < size) {
    const n = 1 + Math.floor(rand() * 4);
    let word = '';
    for (let i = 0; i < n; i++) word += SYLLABLES[Math.floor(rand() * SYLLABLES.length)];
    words.push(rand() < 0.1 ? word[0]?.toUpperCase() + word.slice(1) : word);
  }
  const cumulative = new Float64Array(size);
  let sum = 0;
  for (let i = 0; i < size; i++) cumulative[i] = sum += 1 / (i + 1);
  for (let i = 0; i < size; i++) cumulative[i] = (cumulative[i] as number) / sum;
  return { words, cumulative };
}

function pick(cumulative: Float64Array, u: number): number {
  let lo = 0;
  let hi = cumulative.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((cumulative[mid] as number) < u) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Page text sizes from a few bytes to megabytes: mostly a few KB, a heavy tail, some empty pages. */
function pageLength(rand: () => number): number {
  const u = rand();
  if (u < 0.03) return 0;
  if (u < 0.1) return Math.floor(rand() * 40);
  if (u < 0.999) return Math.floor(Math.exp(6 + rand() * 4)); // ~400 B .. ~22 KB
  return Math.floor(200_000 + rand() * 1_800_000); // rare long pages up to ~2 MB
}

function* docLines(options: SynthOptions): Generator<string> {
  const rand = random(options.seed);
  const { words, cumulative } = vocabulary(rand, 20_000);
  const text = (length: number): string => {
    const parts: string[] = [];
    let size = 0;
    while (size < length) {
      const u = rand();
      const word =
        u < 0.01
          ? (FOREIGN[Math.floor(rand() * FOREIGN.length)] as string)
          : (words[pick(cumulative, rand())] as string);
      const sep = rand() < 0.06 ? '. ' : rand() < 0.02 ? '\n' : ' ';
      parts.push(word, sep);
      size += word.length + sep.length;
    }
    return parts.join('').slice(0, length);
  };
  const bigAt = options.bigPageMb > 0 ? Math.floor(options.docs / 2) : -1;
  let pageId = 1 + Math.floor(rand() * 10);
  for (let i = 0; i < options.docs; i++) {
    pageId += 1 + Math.floor(rand() * 5);
    const length = i === bigAt ? options.bigPageMb * 1024 * 1024 : pageLength(rand);
    const body = text(length);
    const redirect = rand() < 0.02;
    // Both index-line forms: Wikimedia dropped `_type` in September 2025.
    yield rand() < 0.5 ? `{"index":{"_type":"page","_id":"${pageId}"}}` : `{"index":{"_id":"${pageId}"}}`;
    yield JSON.stringify({
      version: 1_000_000 + Math.floor(rand() * 9_000_000),
      wiki: options.wiki,
      namespace: rand() < 0.9 ? 0 : 4,
      title: `${text(3 + Math.floor(rand() * 30)).trim() || 'Untitled'} ${i}`,
      timestamp: '2026-11-22T00:00:00Z',
      page_id: pageId,
      ...(redirect ? { page_type: 'redirect' } : { page_type: 'primary' }),
      text: body,
      source_text: `'''${body.slice(0, 60)}'''${body.slice(60)}`,
      opening_text: null,
      heading: [text(12).trim()],
      category: ['Synthetic pages'],
    });
  }
}

/** An iterable that a `break` does not close, so successive members/parts continue the same doc sequence. */
function resumable(lines: Iterator<string>): Iterable<string> {
  return { [Symbol.iterator]: () => ({ next: () => lines.next() }) };
}

/** Write lines to a sink in ~1 MB writes, honouring backpressure. */
async function writeLines(lines: Iterable<string>, sink: Writable, limit = Infinity): Promise<number> {
  let buffer: string[] = [];
  let size = 0;
  let n = 0;
  for (const line of lines) {
    buffer.push(line, '\n');
    size += line.length;
    n++;
    if (size > 1 << 20) {
      if (!sink.write(buffer.join(''))) await once(sink, 'drain');
      buffer = [];
      size = 0;
    }
    if (n >= limit) break;
  }
  if (buffer.length) sink.write(buffer.join(''));
  return n;
}

/** Legacy layout: one `.json.gz` file, with `members` gzip members. */
export async function synthLegacyDump(path: string, options: SynthOptions): Promise<void> {
  // Like the parts layout, create the folder; a missing one was an unhandled stream error.
  await mkdir(dirname(path), { recursive: true });
  const out = createWriteStream(path);
  const iterable = resumable(docLines(options));
  const perMember = Math.ceil((options.docs * 2) / options.members);
  for (let m = 0; m < options.members; m++) {
    const gzip = createGzip({ level: 6 });
    const piped = pipeline(
      gzip,
      new Writable({ write: (chunk, _e, cb) => (out.write(chunk) ? cb() : out.once('drain', cb)) }),
    );
    await writeLines(iterable, gzip, perMember);
    gzip.end();
    await piped;
  }
  out.end();
  await once(out, 'finish');
}

/** Current layout: a folder of `<wiki>_content-<date>-NNNNN.json.bz2` parts and `_SUCCESS`. */
export async function synthPartsDump(folder: string, options: SynthOptions, date = '20261122'): Promise<string[]> {
  await mkdir(folder, { recursive: true });
  const iterable = resumable(docLines(options));
  const perPart = Math.ceil((options.docs * 2) / options.parts);
  const files: string[] = [];
  for (let p = 0; p < options.parts; p++) {
    const file = join(folder, `${options.wiki}_content-${date}-${String(p).padStart(5, '0')}.json.bz2`);
    const child = spawn('bzip2', ['-c', '-9'], { stdio: ['pipe', 'pipe', 'inherit'] });
    const written = pipeline(child.stdout, createWriteStream(file));
    await writeLines(iterable, child.stdin, perPart);
    child.stdin.end();
    await written;
    files.push(file);
  }
  await writeFile(join(folder, '_SUCCESS'), '');
  return files;
}
