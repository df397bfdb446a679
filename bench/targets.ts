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
    atLeast('our tokenizer ÷ Python tiktoken, MB/s per core', '≥ 1.0', f('tokenizer', 'ours/python.mbPerCpuS'), 1.0, 'BPE merge loop in JS (gpt-tokenizer) vs Rust'),
    atLeast('pipeline ÷ tokenizer-only (single worker)', '≥ 0.85', f('pipeline', 'pipeline/tokenizer'), 0.85, 'inflate + JSON parse/serialise + gzip of shards on the same core'),
    atLeast('N-worker ÷ 1-worker on N cores, ÷ N', '≥ 0.9', f('scaling', 'speedup/N'), 0.9, 'main-thread reading/writing and shared cores'),
    atLeast('ours ÷ predecessor design, docs/s per core (same Ray head)', '≥ 5', f('baseline', 'ours/predecessor.docsPerCpuS'), 5, 'per-task Ray overhead of the predecessor'),
    atLeast('our bzip2 reader ÷ bzip2 -dc, MB/s per core', '≥ 0.8', f('decode', 'bzip2.ours/bzip2 -dc.mbPerCpuS'), 0.8, 'bzip2 decoder implementation (WASM/JS vs C)'),
    {
      figure: 'peak RSS per worker',
      target: rssLimitMB === null ? '≤ 512 MB + 3 × largest page' : `≤ ${rssLimitMB.toFixed(0)} MB (512 + 3 × largest page)`,
      measured: rssMB,
      unit: ' MB',
      met: rssMB === null || rssLimitMB === null ? null : rssMB <= rssLimitMB,
      limitedBy: 'whole-page strings in JS, JSON of token arrays',
    },
    atMost('random access: bytes decoded by all tasks ÷ uncompressed (gzip)', '≤ 1.05', f('random-access', 'gzip.decodedRatio'), 1.05, 'overlap at access points'),
    atMost('random access: bytes decoded by all tasks ÷ uncompressed (bzip2)', '≤ 1.05', f('random-access', 'bzip2.decodedRatio'), 1.05, 'overlap at access points'),
    atMost('random access: first row of last task ÷ first task (gzip)', '≤ 1.5', f('random-access', 'gzip.ttfrRatio'), 1.5, 'seek cost at access points'),
    atMost('random access: first row of last task ÷ first task (bzip2)', '≤ 1.5', f('random-access', 'bzip2.ttfrRatio'), 1.5, 'seek cost at access points'),
  ];
}
