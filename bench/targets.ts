import type { SectionResult, TargetResult } from './lib/report.js';

function figure(results: readonly SectionResult[], section: string, key: string): number | null {
  const v = results.find((r) => r.section === section)?.figures[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function atLeast(
  figureName: string,
  target: string,
  measured: number | null,
  bar: number,
  limitedBy: string,
  unit = '×',
): TargetResult {
  return { figure: figureName, target, measured, unit, met: measured === null ? null : measured >= bar, limitedBy };
}

function atMost(
  figureName: string,
  target: string,
  measured: number | null,
  bar: number,
  limitedBy: string,
  unit = '×',
): TargetResult {
  return { figure: figureName, target, measured, unit, met: measured === null ? null : measured <= bar, limitedBy };
}

/** The bench's target table (speed, scaling, memory and random access), evaluated on one run's figures. */
export function evaluateTargets(results: readonly SectionResult[]): TargetResult[] {
  const f = (section: string, key: string): number | null => figure(results, section, key);
  const rssMB = f('memory', 'peakRssPerWorkerMB');
  const rssLimitMB = f('memory', 'rssLimitMB');
  return [
    atLeast(
      'our tokenizer ÷ Python tiktoken, MB/s per core',
      '≥ 1.5',
      f('tokenizer', 'ours/python.mbPerCpuS'),
      1.5,
      "the native addon's regex split (bpe-openai) and BPE of pieces that are neither one token nor cached; without cargo the JS tokenizer serves, at about Python's speed",
    ),
    atLeast(
      'pipeline ÷ tokenizer-only, per core, jsonl format',
      '≥ 0.7',
      f('pipeline', 'pipeline/tokenizer'),
      0.7,
      "work besides tokenizing, in CPU time: start-up (Node, the CLI, the worker loading the encoding: ~0.5 CPU-s with the native tokenizer), gzip of the ids' decimal text (level 1, libuv threads), the dump's inflate (source_text included), decoding and parsing each doc line, GC threads; the faster the tokenizer, the larger their share",
    ),
    atLeast(
      'pipeline ÷ tokenizer-only, per core, megatron format',
      '≥ 0.85',
      f('pipeline', 'pipeline.megatron/tokenizer'),
      0.85,
      "the same work as jsonl minus the ids' decimal text and its gzip: start-up (~0.5 CPU-s), the dump's inflate, decoding and parsing each doc line, hashing the .bin, GC threads",
    ),
    atLeast(
      'N workers ÷ 1 worker on N cores, ÷ N, jsonl format',
      '≥ 0.9',
      f('scaling', 'speedup/N'),
      0.9,
      "one worker already keeps more than one core busy (main thread, shard gzip on libuv threads, GC), `run`'s manifest pass is serial, and on a shared host the other cores are not always free",
    ),
    atLeast(
      'N workers ÷ 1 worker on N cores, ÷ N, megatron format',
      '≥ 0.9',
      f('scaling', 'megatron.speedup/N'),
      0.9,
      'as jsonl, with less gzip beside the workers',
    ),
    atLeast(
      'ours ÷ predecessor design, docs/s per core, same Ray head, jsonl format',
      '≥ 5',
      f('baseline', 'ours/predecessor.docsPerCpuS'),
      5,
      'our cost besides tokenizing (pipeline ÷ tokenizer, the manifest pass, scaling); the predecessor spends most of its time in Ray per-page task overhead, not in tiktoken',
    ),
    atLeast(
      'ours ÷ predecessor design, docs/s per core, same Ray head, megatron format',
      '≥ 5',
      f('baseline', 'megatron.ours/predecessor.docsPerCpuS'),
      5,
      "as jsonl, without the ids' decimal text and its gzip",
    ),
    atLeast(
      '`run` ÷ a plain Python script (multiprocessing + tiktoken), wall, same dump and cores, jsonl both sides',
      '≥ 2',
      f('plain-python', 'ours/python.wall'),
      2,
      "our tokenizer against tiktoken's Rust core per core (the JS fallback is at parity, so then both spend about the same CPU per doc), and `run` also makes the manifest (a pass over the dump) and verifies every shard, which the script does not",
    ),
    atLeast(
      'our bzip2 reader ÷ bzip2 -dc, MB/s per core',
      '≥ 0.8',
      f('decode', 'bzip2.ours/bzip2 -dc.mbPerCpuS'),
      0.8,
      "ours pipes each task's realigned blocks through lbzip2 -dc -n1 (bzip2 -dc when lbzip2 is missing); reading the child's output costs our process a few per cent",
    ),
    {
      figure: 'peak RSS per worker',
      target:
        rssLimitMB === null ? '≤ 512 MB + 3 × largest page' : `≤ ${rssLimitMB.toFixed(0)} MB (512 + 3 × largest page)`,
      measured: rssMB,
      unit: ' MB',
      met: rssMB === null || rssLimitMB === null ? null : rssMB <= rssLimitMB,
      limitedBy:
        'the batch holding the page (its whole raw line, source_text included) and its ids as 4-byte arrays until the row is written; lines over 8 MiB are never decoded as one string',
    },
    atMost(
      'random access: bytes decoded by all tasks ÷ uncompressed (gzip)',
      '≤ 1.05',
      f('random-access', 'gzip.decodedRatio'),
      1.05,
      'the block a task starts in, decoded from its access point',
    ),
    atMost(
      'random access: bytes decoded by all tasks ÷ uncompressed (bzip2)',
      '≤ 1.05',
      f('random-access', 'bzip2.decodedRatio'),
      1.05,
      'the block a task starts in, decoded from its access point',
    ),
    atMost(
      'random access: first row of last task ÷ first task (gzip)',
      '≤ 1.5',
      f('random-access', 'gzip.ttfrRatio'),
      1.5,
      'decoding up to the first doc inside the first block',
    ),
    atMost(
      'random access: first row of last task ÷ first task (bzip2)',
      '≤ 1.5',
      f('random-access', 'bzip2.ttfrRatio'),
      1.5,
      'decoding up to the first doc inside the first block',
    ),
  ];
}
