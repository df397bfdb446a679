import { rm } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { cliOutput, ensureCli, runCli } from '../lib/cli.js';
import { ensureSynthDump, ensureTextsOfDump, mainDump } from '../lib/corpus.js';
import { median, runProbe, type ProcessUsage } from '../lib/measure.js';
import { benchCacheDir } from '../lib/paths.js';
import type { SectionResult } from '../lib/report.js';
import { OUTPUT_FORMATS } from '../../src/output/formats.js';

export interface PipelineOptions {
  quick: boolean;
  repeats: number;
  encoding: string;
}

interface ProbeResult {
  bytes: number;
  tokens: number;
  wallS: number;
  cpuS: number;
}

function skipped(section: string, reason: string): SectionResult {
  return { section, tables: [], figures: {}, notes: [`SKIP ${section}: ${reason}`] };
}

/** A fresh output prefix per measured run: runs are idempotent, so reusing one would measure a no-op. */
export async function freshPrefix(section: string, name: string): Promise<string> {
  const dir = join(benchCacheDir('runs', section), name);
  await rm(dir, { recursive: true, force: true });
  return dir;
}

/** Run-tasks on a fresh prefix after an (untimed) manifest pass; returns the run-tasks usage. */
async function timedRunTasks(
  dumpPath: string,
  prefix: string,
  concurrency: number,
  encoding: string,
  format = 'jsonl',
): Promise<ProcessUsage> {
  const manifest = join(prefix, 'manifest.json');
  await cliOutput([
    'manifest',
    '--dump',
    dumpPath,
    '--manifest-uri',
    manifest,
    '--encoding',
    encoding,
    '--format',
    format,
  ]);
  return runCli([
    'run-tasks',
    '--manifest-uri',
    manifest,
    '--output-prefix',
    prefix,
    '--concurrency',
    String(concurrency),
  ]);
}

/**
 * Part 3a: end-to-end single-worker throughput (run-tasks --concurrency 1) ÷ tokenizer-only on the same texts, for
 * each output format.
 */
export async function benchPipeline(opts: PipelineOptions): Promise<SectionResult> {
  const skip = await ensureCli();
  if (skip) return skipped('pipeline', skip);
  const dump = await mainDump(opts.quick, 'gzip');
  const corpus = await ensureTextsOfDump(dump);
  // The same process on a handful of docs: what every run-tasks pays before its first batch and after its last
  // (Node and the CLI loading, workers loading the encoding, opening and closing a task), which the tokenizer probe's
  // timed loop does not include. A job of real tasks pays it once for gigabytes.
  const tiny = await ensureSynthDump({ docs: 20, format: 'gzip' });
  const pipe: ProcessUsage[] = [];
  const megatron: ProcessUsage[] = [];
  const startup: ProcessUsage[] = [];
  const tok: ProbeResult[] = [];
  for (let rep = 0; rep < opts.repeats; rep++) {
    pipe.push(await timedRunTasks(dump.path, await freshPrefix('pipeline', `r${rep}`), 1, opts.encoding));
    megatron.push(
      await timedRunTasks(dump.path, await freshPrefix('pipeline', `megatron-r${rep}`), 1, opts.encoding, 'megatron'),
    );
    startup.push(await timedRunTasks(tiny.path, await freshPrefix('pipeline', `startup-r${rep}`), 1, opts.encoding));
    tok.push(await runProbe<ProbeResult>('tokenizer/js-probe.ts', ['ours', corpus.path, opts.encoding]));
  }
  const mb = corpus.bytes / 1e6;
  const pipeWall = mb / median(pipe.map((p) => p.wallS));
  const pipeCpu = mb / median(pipe.map((p) => p.cpuS));
  const tokWall = mb / median(tok.map((p) => p.wallS));
  const tokCpu = mb / median(tok.map((p) => p.cpuS));
  // Ratios per repeat (the two runs back to back), then their median: the machine's speed drifts between repeats.
  const ratioCpu = median(pipe.map((p, i) => tok[i]!.cpuS / p.cpuS));
  const ratioWall = median(pipe.map((p, i) => tok[i]!.wallS / p.wallS));
  const megatronCpu = median(megatron.map((p, i) => tok[i]!.cpuS / p.cpuS));
  const megatronWall = median(megatron.map((p, i) => tok[i]!.wallS / p.wallS));
  const steady = (runs: readonly ProcessUsage[]): number =>
    median(runs.map((p, i) => tok[i]!.cpuS / (p.cpuS - startup[i]!.cpuS)));
  const startupCpu = median(startup.map((p) => p.cpuS));
  return {
    section: 'pipeline',
    tables: [
      {
        title: `Pipeline efficiency: ${mb.toFixed(1)} MB of article text, ${dump.docs} docs (${(dump.compressedBytes / 1e6).toFixed(1)} MB gzip), median of ${opts.repeats}`,
        headers: [
          'path',
          'MB/s of text',
          'MB/s per core',
          'docs/s',
          'pipeline ÷ tokenizer (wall)',
          'pipeline ÷ tokenizer (per core)',
          'per core, start-up excluded',
        ],
        rows: [
          ['tokenizer only (ours)', tokWall, tokCpu, corpus.docs / median(tok.map((p) => p.wallS)), '', '', ''],
          [
            'run-tasks --concurrency 1 (jsonl)',
            pipeWall,
            pipeCpu,
            dump.docs / median(pipe.map((p) => p.wallS)),
            ratioWall,
            ratioCpu,
            steady(pipe),
          ],
          [
            'run-tasks --concurrency 1 (megatron)',
            mb / median(megatron.map((p) => p.wallS)),
            mb / median(megatron.map((p) => p.cpuS)),
            dump.docs / median(megatron.map((p) => p.wallS)),
            megatronWall,
            megatronCpu,
            steady(megatron),
          ],
        ],
      },
    ],
    figures: {
      textMB: mb,
      'pipeline.mbPerS': pipeWall,
      'pipeline.mbPerCpuS': pipeCpu,
      'tokenizer.mbPerS': tokWall,
      'tokenizer.mbPerCpuS': tokCpu,
      'pipeline/tokenizer': ratioCpu,
      'pipeline/tokenizer.wall': ratioWall,
      'pipeline.megatron/tokenizer': megatronCpu,
      'pipeline.megatron/tokenizer.wall': megatronWall,
      'pipeline/tokenizer.steady': steady(pipe),
      'pipeline.megatron/tokenizer.steady': steady(megatron),
      'startup.cpuS': startupCpu,
    },
    notes: [
      'the target figure is per core (CPU time of the whole run-tasks process, all threads): with one tokenizer worker the main thread reads, inflates and writes on another core, so the wall-clock ratio flatters the pipeline',
      'run-tasks time includes Node start-up and loading the tokenizer; the tokenizer-only probe times its loop alone',
      `start-up excluded: run-tasks' CPU minus that of run-tasks on a ${tiny.docs}-doc dump in the same repeat (${startupCpu.toFixed(2)} CPU-s: Node and the CLI, the worker loading the encoding, one task opened and closed), as a job of real tasks pays it once`,
    ],
  };
}

/** Part 3b: `run` (manifest + run-tasks + verify) with 1 and with N workers on N cores. */
export async function benchScaling(opts: PipelineOptions): Promise<SectionResult> {
  const skip = await ensureCli();
  if (skip) return skipped('scaling', skip);
  const n = availableParallelism();
  const dump = await mainDump(opts.quick, 'gzip');
  const usages = new Map<string, ProcessUsage[]>();
  for (let rep = 0; rep < opts.repeats; rep++) {
    for (const format of OUTPUT_FORMATS) {
      for (const c of [1, n]) {
        const prefix = await freshPrefix('scaling', `${format}-c${c}-r${rep}`);
        const u = await runCli([
          'run',
          '--dump',
          dump.path,
          '--output-prefix',
          prefix,
          '--concurrency',
          String(c),
          '--encoding',
          opts.encoding,
          '--format',
          format,
        ]);
        usages.set(`${format}.${c}`, [...(usages.get(`${format}.${c}`) ?? []), u]);
      }
    }
  }
  const rows: (string | number)[][] = [];
  const figures: Record<string, number> = { workers: n };
  for (const format of OUTPUT_FORMATS) {
    const runs1 = usages.get(`${format}.1`)!;
    const runsN = usages.get(`${format}.${n}`)!;
    const w1 = median(runs1.map((u) => u.wallS));
    const wn = median(runsN.map((u) => u.wallS));
    const speedup = w1 / wn;
    const cpu = (runs: readonly ProcessUsage[]): number => median(runs.map((u) => u.cpuS));
    rows.push(
      [format, 1, w1, cpu(runs1), dump.docs / w1, 1, 1],
      [format, n, wn, cpu(runsN), dump.docs / wn, speedup, speedup / n],
    );
    // jsonl keeps the figure names of earlier results files; megatron's carry a prefix.
    const key = (name: string): string => (format === 'jsonl' ? name : `${format}.${name}`);
    Object.assign(figures, {
      [key('wall.1')]: w1,
      [key(`wall.${n}`)]: wn,
      [key('speedup')]: speedup,
      [key('speedup/N')]: speedup / n,
    });
  }
  return {
    section: 'scaling',
    tables: [
      {
        title: `Scaling: run on ${dump.docs} docs (${(dump.uncompressedBytes / 1e6).toFixed(0)} MB uncompressed), median of ${opts.repeats}`,
        headers: ['format', 'workers', 'wall s', 'CPU s', 'docs/s', 'speedup', 'speedup ÷ workers'],
        rows,
      },
    ],
    figures,
    notes: [
      'wall time of the whole `run` (manifest, run-tasks, verify) as a user sees it; other load on the machine inflates both',
      'CPU s (all threads) beside it: about the same CPU at N workers as at 1 means the work itself scales, and a speedup short of N is cores the machine did not have free, or the serial manifest pass and verify',
    ],
  };
}

/** Part 3c: peak RSS of run-tasks on a dump holding one very large page. */
export async function benchMemory(opts: PipelineOptions): Promise<SectionResult> {
  const skip = await ensureCli();
  if (skip) return skipped('memory', skip);
  const bigPageMb = opts.quick ? 5 : 50;
  const dump = await ensureSynthDump({ docs: opts.quick ? 100 : 1000, format: 'gzip', bigPageMb });
  // synth's --big-page-mb counts MiB of text
  const pageMB = (bigPageMb * 2 ** 20) / 1e6;
  const rows: (string | number)[][] = [];
  const figures: Record<string, number> = { largestPageMB: pageMB, rssLimitMB: 512 + 3 * pageMB };
  for (const c of [1, availableParallelism()]) {
    const rss: number[] = [];
    // Peak RSS is a maximum, not a rate: one run per worker count is enough in full mode and saves minutes.
    for (let rep = 0; rep < Math.min(opts.repeats, 1); rep++) {
      const u = await timedRunTasks(dump.path, await freshPrefix('memory', `c${c}-r${rep}`), c, opts.encoding);
      rss.push(u.maxRssKb / 1024);
    }
    const peak = Math.max(...rss);
    rows.push([c, peak, peak / c, 512 + 3 * pageMB]);
    figures[`peakRssMB.c${c}`] = peak;
    // The whole process with one worker is the honest per-worker figure: nothing is shared with other workers.
    if (c === 1) figures['peakRssPerWorkerMB'] = peak;
  }
  return {
    section: 'memory',
    tables: [
      {
        title: `Memory: run-tasks on a dump with one ${pageMB.toFixed(0)} MB page (peak RSS of the whole process)`,
        headers: ['workers', 'peak RSS MB', 'per worker MB', 'limit MB (512 + 3 × page)'],
        rows,
      },
    ],
    figures,
    notes: [],
  };
}
