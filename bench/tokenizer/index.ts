import { ensureTextCorpus } from '../lib/corpus.js';
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

export interface TokenizerOptions {
  quick: boolean;
  repeats: number;
  encoding: string;
}

const JS_LIBS = ['ours', 'tiktoken-wasm', 'js-tiktoken'] as const;

/** Part 1: single-thread tokenizer core on the same article texts, ours vs Python tiktoken vs the two JS ports. */
export async function benchTokenizer(opts: TokenizerOptions): Promise<SectionResult> {
  const notes: string[] = [];
  const corpus = await ensureTextCorpus(opts.quick ? 300_000 : 20_000_000);
  notes.push(`text: ${corpus.docs} docs, ${(corpus.bytes / 1e6).toFixed(1)} MB; ${corpus.source}`);

  const py = await pythonEnv();
  if ('skip' in py) notes.push(`SKIP python-tiktoken: ${py.skip}`);

  const runs = new Map<string, ProbeResult[]>();
  const record = (r: ProbeResult): void => {
    runs.set(r.lib, [...(runs.get(r.lib) ?? []), r]);
  };
  // Interleave contenders within each repeat so drift (thermal, noisy neighbours) hits all of them alike.
  for (let rep = 0; rep < opts.repeats; rep++) {
    for (const lib of JS_LIBS) record(await runProbe<ProbeResult>('tokenizer/js-probe.ts', [lib, corpus.path, opts.encoding]));
    if (!('skip' in py)) {
      const out = await spawnCollect(py.python, [join(benchDir, 'tokenizer', 'tiktoken_probe.py'), corpus.path, opts.encoding], { env: py.env });
      record(JSON.parse(out.trim().split('\n').pop() ?? '') as ProbeResult);
    }
  }

  const summary = [...runs.entries()].map(([lib, rs]) => {
    const first = rs[0]!;
    const wallS = median(rs.map((r) => r.wallS));
    const cpuS = median(rs.map((r) => r.cpuS));
    return {
      lib,
      source: first.source,
      mbPerS: first.bytes / 1e6 / wallS,
      mbPerCpuS: first.bytes / 1e6 / cpuS,
      tokensPerS: first.tokens / wallS,
      tokens: first.tokens,
      digests: new Set(rs.map((r) => r.digest)),
      digest: first.digest,
    };
  });
  const reference = summary.find((s) => s.lib === 'python-tiktoken') ?? summary.find((s) => s.lib === 'tiktoken-wasm')!;
  const allIdentical = summary.every((s) => s.digests.size === 1 && s.digest === reference.digest);
  for (const s of summary) {
    if (s.digests.size !== 1 || s.digest !== reference.digest) notes.push(`MISMATCH: ${s.lib} ids differ from ${reference.lib}`);
  }
  const ours = summary.find((s) => s.lib === 'ours')!;
  const python = summary.find((s) => s.lib === 'python-tiktoken');
  notes.push(`ours = ${ours.source}`);

  const figures: Record<string, number> = { textMB: corpus.bytes / 1e6, idsIdentical: allIdentical ? 1 : 0 };
  for (const s of summary) {
    figures[`${s.lib}.mbPerS`] = s.mbPerS;
    figures[`${s.lib}.mbPerCpuS`] = s.mbPerCpuS;
    figures[`${s.lib}.tokensPerS`] = s.tokensPerS;
  }
  if (python) figures['ours/python.mbPerCpuS'] = ours.mbPerCpuS / python.mbPerCpuS;

  return {
    section: 'tokenizer',
    tables: [
      {
        title: `Tokenizer core, single thread, ${opts.encoding}, ${(corpus.bytes / 1e6).toFixed(1)} MB of article text (median of ${opts.repeats})`,
        headers: ['tokenizer', 'MB/s', 'MB/s per core', 'Mtokens/s', 'ours ÷ this (per core)', 'ids = ' + reference.lib],
        rows: summary.map((s) => [
          s.lib,
          s.mbPerS,
          s.mbPerCpuS,
          s.tokensPerS / 1e6,
          ours.mbPerCpuS / s.mbPerCpuS,
          s.digests.size === 1 && s.digest === reference.digest ? 'yes' : 'NO',
        ]),
      },
    ],
    figures,
    notes,
  };
}
