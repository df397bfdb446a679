import { ensureSynthDump, ensureTextCorpus, ensureTextsOfDump, type TextCorpus } from '../lib/corpus.js';
import { median, runProbe, spawnCollect } from '../lib/measure.js';
import { benchDir } from '../lib/paths.js';
import { pythonEnv } from '../lib/python.js';
import type { SectionResult } from '../lib/report.js';
import { join } from 'node:path';

interface ProbeResult {
  lib: string;
  source: string;
  docs: number;
  bytes: number;
  tokens: number;
  wallS: number;
  cpuS: number;
  digest: string;
}

const TOKENIZER_REPEATS = 5;

export interface TokenizerOptions {
  quick: boolean;
  repeats: number;
  encoding: string;
}

/** Each probe run: which tokenizer on which corpus. */
interface Contender {
  lib: string;
  corpus: TextCorpus;
}

/**
 * Part 1: single-thread tokenizer core on the same article texts, ours vs Python tiktoken vs the JS ports.
 * Ours (the native addon when built, as run-tasks uses it), ours-js (the JS tokenizer it falls back to), Python and
 * gpt-tokenizer (what ours used before) run on the full text (the target figure); the two slow JS ports run on a
 * prefix of it, next to ours and Python on that same prefix, so every ratio compares equal inputs and the bench
 * fits its time budget.
 */
export async function benchTokenizer(opts: TokenizerOptions): Promise<SectionResult> {
  const notes: string[] = [];
  const synth = await ensureTextsOfDump(await ensureSynthDump({ docs: opts.quick ? 60 : 3200, format: 'gzip' }));
  const real = await ensureTextCorpus(opts.quick ? 300_000 : 20_000_000);
  const prefix = await ensureTextCorpus(opts.quick ? 100_000 : 4_000_000);
  const label = new Map<TextCorpus, string>([
    [synth, 'synth'],
    [real, 'real'],
    [prefix, 'real prefix'],
  ]);
  for (const c of [synth, real, prefix])
    notes.push(`${label.get(c)} text: ${c.docs} docs, ${(c.bytes / 1e6).toFixed(1)} MB; ${c.source}`);

  const py = await pythonEnv();
  if ('skip' in py) notes.push(`SKIP python-tiktoken: ${py.skip}`);
  const libs = ['ours', ...('skip' in py ? [] : ['python-tiktoken'])];
  const contenders: Contender[] = [
    ...[...libs, 'ours-js', ...(opts.encoding === 'cl100k_base' ? ['gpt-tokenizer'] : [])].map((lib) => ({
      lib,
      corpus: synth,
    })),
    ...[...libs, 'ours-js'].map((lib) => ({ lib, corpus: real })),
    ...[...libs, 'tiktoken-wasm', 'js-tiktoken'].map((lib) => ({ lib, corpus: prefix })),
  ];
  const probe = async (c: Contender): Promise<ProbeResult> => {
    if (c.lib !== 'python-tiktoken')
      return runProbe<ProbeResult>('tokenizer/js-probe.ts', [c.lib, c.corpus.path, opts.encoding]);
    if ('skip' in py) throw new Error('unreachable: python skipped');
    const out = await spawnCollect(
      py.python,
      [join(benchDir, 'tokenizer', 'tiktoken_probe.py'), c.corpus.path, opts.encoding],
      { env: py.env },
    );
    return JSON.parse(out.trim().split('\n').pop() ?? '') as ProbeResult;
  };

  const runs = new Map<Contender, ProbeResult[]>();
  // This machine's speed drifts by ±30 % within minutes (shared host), for every contender alike: more repeats than
  // elsewhere (a repeat costs ~20 s), and ratios taken per repeat between neighbours in time, then their median.
  const repeats = opts.quick ? opts.repeats : Math.max(opts.repeats, TOKENIZER_REPEATS);
  // Interleave contenders within each repeat so drift (load from other processes) hits all of them alike.
  for (let rep = 0; rep < repeats; rep++) {
    for (const c of contenders) runs.set(c, [...(runs.get(c) ?? []), await probe(c)]);
  }

  const summary = contenders.map((c) => {
    const rs = runs.get(c)!;
    const first = rs[0]!;
    const wallS = median(rs.map((r) => r.wallS));
    const cpuS = median(rs.map((r) => r.cpuS));
    return {
      ...c,
      source: first.source,
      mbPerS: first.bytes / 1e6 / wallS,
      mbPerCpuS: first.bytes / 1e6 / cpuS,
      tokensPerS: first.tokens / wallS,
      digests: new Set(rs.map((r) => r.digest)),
      digest: first.digest,
    };
  });
  type Row = (typeof summary)[number];
  // Ids are checked against Python tiktoken when present (the reference), else the WASM binding of the same Rust code.
  const refLib = 'skip' in py ? 'tiktoken-wasm' : 'python-tiktoken';
  const find = (lib: string, corpus: TextCorpus): Row | undefined =>
    summary.find((s) => s.lib === lib && s.corpus === corpus);
  const identical = (s: Row): boolean => {
    const ref = find(refLib, s.corpus);
    return s.digests.size === 1 && ref !== undefined && ref.digests.size === 1 && s.digest === ref.digest;
  };
  for (const s of summary)
    if (!identical(s))
      notes.push(`MISMATCH: ${s.lib} ids differ from ${refLib} on ${(s.corpus.bytes / 1e6).toFixed(1)} MB`);
  notes.push(`ours = ${summary[0]!.source}`);

  const figures: Record<string, number> = { idsIdentical: summary.every(identical) ? 1 : 0 };
  for (const s of summary) {
    const key = `${label.get(s.corpus)}.${s.lib}`;
    figures[`${key}.mbPerS`] = s.mbPerS;
    figures[`${key}.mbPerCpuS`] = s.mbPerCpuS;
    figures[`${key}.tokensPerS`] = s.tokensPerS;
  }
  /** Median over repeats of ours ÷ `lib` per core, each repeat's pair measured back to back. */
  const pairedRatio = (lib: string, corpus: TextCorpus): number => {
    const ours = runs.get(contenders.find((c) => c.lib === 'ours' && c.corpus === corpus)!)!;
    const theirs = runs.get(contenders.find((c) => c.lib === lib && c.corpus === corpus)!)!;
    return median(ours.map((o, i) => theirs[i]!.cpuS / o.cpuS));
  };
  const ratios = [synth, real].flatMap((c) => (find('python-tiktoken', c) ? [pairedRatio('python-tiktoken', c)] : []));
  // The target figure is the lower of the two texts' ratios: neither text alone is Wikipedia.
  if (ratios.length > 0) figures['ours/python.mbPerCpuS'] = Math.min(...ratios);

  return {
    section: 'tokenizer',
    tables: [
      {
        title: `Tokenizer core, single thread, ${opts.encoding} (median of ${repeats}; ratios: median of the per-repeat ratios, same text)`,
        headers: [
          'tokenizer',
          'text',
          'MB',
          'MB/s',
          'MB/s per core',
          'Mtokens/s',
          'ours ÷ this (per core)',
          `ids = ${refLib}`,
        ],
        rows: summary.map((s) => [
          s.lib,
          label.get(s.corpus)!,
          s.corpus.bytes / 1e6,
          s.mbPerS,
          s.mbPerCpuS,
          s.tokensPerS / 1e6,
          s.lib === 'ours' ? 1 : pairedRatio(s.lib, s.corpus),
          identical(s) ? 'yes' : 'NO',
        ]),
      },
    ],
    figures,
    notes,
  };
}
