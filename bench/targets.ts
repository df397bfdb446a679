import type { SectionResult, TargetResult } from './lib/report.js';

function figure(results: readonly SectionResult[], section: string, key: string): number | null {
  const v = results.find((r) => r.section === section)?.figures[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function atLeast(figureName: string, target: string, measured: number | null, bar: number, limitedBy: string, unit = '×'): TargetResult {
  return { figure: figureName, target, measured, unit, met: measured === null ? null : measured >= bar, limitedBy };
}

function atMost(figureName: string, target: string, measured: number | null, bar: number, limitedBy: string, unit = '×'): TargetResult {
  return { figure: figureName, target, measured, unit, met: measured === null ? null : measured <= bar, limitedBy };
}

/** The target table of issue 7 (plus issue 3's random-access targets), evaluated on one run's figures. */
export function evaluateTargets(results: readonly SectionResult[]): TargetResult[] {
  const f = (section: string, key: string): number | null => figure(results, section, key);
  const rssMB = f('memory', 'peakRssPerWorkerMB');
  const rssLimitMB = f('memory', 'rssLimitMB');
  return [
    atLeast('our tokenizer ÷ Python tiktoken, MB/s per core', '≥ 1.5', f('tokenizer', 'ours/python.mbPerCpuS'), 1.5, 'the native addon\'s regex split (bpe-openai) and BPE of pieces that are neither one token nor cached; without cargo the JS tokenizer serves, at about Python\'s speed'),
    atLeast('pipeline ÷ tokenizer-only (single worker)', '≥ 0.85', f('pipeline', 'pipeline/tokenizer'), 0.85, 'work besides tokenizing, in CPU time: shard gzip (level 1, libuv threads), JSON decode + parse and row serialisation (worker), dump inflate/read/write (main thread), GC threads, start-up; the faster the tokenizer, the larger their share'),
    atLeast('pipeline ÷ tokenizer-only (single worker), megatron format', '≥ 0.85', f('pipeline', 'pipeline.megatron/tokenizer'), 0.85, 'the same work as jsonl minus the ids\' decimal text and most of the gzip: JSON decode + parse (worker), dump inflate/read (main thread), GC threads, start-up'),
    atLeast('N-worker ÷ 1-worker on N cores, ÷ N', '≥ 0.9', f('scaling', 'speedup/N'), 0.9, 'one worker already keeps more than one core busy (main thread, shard gzip on libuv threads, GC), and `run`\'s manifest pass and verify are serial'),
    atLeast('ours ÷ predecessor design, docs/s per core (same Ray head)', '≥ 5', f('baseline', 'ours/predecessor.docsPerCpuS'), 5, 'our cost besides tokenizing (pipeline ÷ tokenizer, the manifest pass, scaling); the predecessor spends most of its time in Ray per-page task overhead, not in tiktoken'),
    atLeast('our bzip2 reader ÷ bzip2 -dc, MB/s per core', '≥ 0.8', f('decode', 'bzip2.ours/bzip2 -dc.mbPerCpuS'), 0.8, 'ours pipes each task\'s realigned blocks through lbzip2 -dc -n1 (bzip2 -dc when lbzip2 is missing); reading the child\'s output costs our process a few per cent'),
    {
      figure: 'peak RSS per worker',
      target: rssLimitMB === null ? '≤ 512 MB + 3 × largest page' : `≤ ${rssLimitMB.toFixed(0)} MB (512 + 3 × largest page)`,
      measured: rssMB,
      unit: ' MB',
      met: rssMB === null || rssLimitMB === null ? null : rssMB <= rssLimitMB,
      limitedBy: 'the batch holding the page (its whole raw line, source_text included) and its ids as 4-byte arrays until the row is written; lines over 8 MiB are never decoded as one string',
    },
    atMost('random access: bytes decoded by all tasks ÷ uncompressed (gzip)', '≤ 1.05', f('random-access', 'gzip.decodedRatio'), 1.05, 'the block a task starts in, decoded from its access point'),
    atMost('random access: bytes decoded by all tasks ÷ uncompressed (bzip2)', '≤ 1.05', f('random-access', 'bzip2.decodedRatio'), 1.05, 'the block a task starts in, decoded from its access point'),
    atMost('random access: first row of last task ÷ first task (gzip)', '≤ 1.5', f('random-access', 'gzip.ttfrRatio'), 1.5, 'decoding up to the first doc inside the first block'),
    atMost('random access: first row of last task ÷ first task (bzip2)', '≤ 1.5', f('random-access', 'bzip2.ttfrRatio'), 1.5, 'decoding up to the first doc inside the first block'),
  ];
}
