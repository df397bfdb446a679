import { readFile, rm } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { ensureCli, runCli } from '../lib/cli.js';
import { mainDump } from '../lib/corpus.js';
import { markerTotals } from '../lib/markers.js';
import { median, runMeasured, type ProcessUsage } from '../lib/measure.js';
import { benchDir } from '../lib/paths.js';
import { pythonEnv } from '../lib/python.js';
import type { SectionResult } from '../lib/report.js';
import { freshPrefix, type PipelineOptions } from '../pipeline/index.js';

/** What tokenize_dump.py prints. */
interface ScriptOutput {
  docs: number;
  rows: number;
  tokens: number;
}

/**
 * `run` against the script a user would write instead (tokenize_dump.py: stream the .json.gz, multiprocessing.Pool
 * over all cores, tiktoken, gzip JSONL rows), on the same dump and the same cores, side by side: wall time as the
 * user sees it. Both must produce the same token total.
 */
export async function benchPlainPython(opts: PipelineOptions): Promise<SectionResult> {
  const py = await pythonEnv();
  const skip = (await ensureCli()) ?? ('skip' in py ? py.skip : null);
  if (skip || 'skip' in py)
    return { section: 'plain-python', tables: [], figures: {}, notes: [`SKIP plain-python: ${skip}`] };
  const cores = availableParallelism();
  const dump = await mainDump(opts.quick, 'gzip');
  const script: { usage: ProcessUsage; tokens: number }[] = [];
  const ours: { usage: ProcessUsage; tokens: number }[] = [];
  const runScript = async (rep: number): Promise<void> => {
    const dir = await freshPrefix('plain-python', `python-r${rep}`);
    const printed = `${dir}.out.json`;
    const usage = await runMeasured(
      py.python,
      [
        join(benchDir, 'plain-python', 'tokenize_dump.py'),
        '--dump',
        dump.path,
        '--out',
        `${dir}.jsonl.gz`,
        '--processes',
        String(cores),
        '--encoding',
        opts.encoding,
      ],
      { env: py.env, stdoutPath: printed },
    );
    const out = JSON.parse((await readFile(printed, 'utf8')).trim().split('\n').pop() ?? '') as ScriptOutput;
    await rm(printed, { force: true });
    script.push({ usage, tokens: out.tokens });
  };
  const runOurs = async (rep: number): Promise<void> => {
    const prefix = await freshPrefix('plain-python', `ours-r${rep}`);
    const usage = await runCli([
      'run',
      '--dump',
      dump.path,
      '--output-prefix',
      prefix,
      '--concurrency',
      String(cores),
      '--encoding',
      opts.encoding,
    ]);
    ours.push({ usage, tokens: (await markerTotals(prefix)).tokens });
  };
  // Side by side; the order flips every repeat so neither side always runs on a warmer (or busier) machine.
  for (let rep = 0; rep < opts.repeats; rep++) {
    for (const step of rep % 2 === 0 ? [runScript, runOurs] : [runOurs, runScript]) await step(rep);
  }
  const wall = (xs: readonly { usage: ProcessUsage }[]): number => median(xs.map((x) => x.usage.wallS));
  const cpu = (xs: readonly { usage: ProcessUsage }[]): number => median(xs.map((x) => x.usage.cpuS));
  // Paired per repeat (the two runs back to back), then the median: the machine's speed drifts between repeats.
  const ratioWall = median(ours.map((o, i) => script[i]!.usage.wallS / o.usage.wallS));
  const ratioCpu = median(ours.map((o, i) => script[i]!.usage.cpuS / o.usage.cpuS));
  const notes = [
    `wall and CPU of the whole process as a user sees it: \`run\` with --concurrency ${cores} (manifest pass, run-tasks, verify) against tokenize_dump.py with Pool(${cores}) (tiktoken from PyPI, in the Ray venv); CPU includes the pool's processes and our decoders`,
    "the script writes one gzip JSONL file of rows with our shard row's fields at gzip level 1 (our shards' level); it makes no manifest, no markers and verifies nothing",
  ];
  const totals = new Set([...script, ...ours].map((r) => r.tokens));
  if (totals.size !== 1) {
    notes.push(
      `MISMATCH: token totals differ (script ${script.map((r) => r.tokens).join('/')}, ours ${ours.map((r) => r.tokens).join('/')})`,
    );
  } else {
    notes.push(`same work: both sides produced ${[...totals][0]} tokens in every repeat`);
  }
  return {
    section: 'plain-python',
    tables: [
      {
        title: `Against a plain Python script: ${dump.docs} docs (${(dump.uncompressedBytes / 1e6).toFixed(0)} MB uncompressed), ${cores} cores, median of ${opts.repeats}`,
        headers: ['what', 'wall s', 'CPU s', 'docs/s', 'ours ÷ this (wall)', 'ours ÷ this (CPU)'],
        rows: [
          [
            `tokenize_dump.py: multiprocessing.Pool(${cores}), tiktoken, gzip JSONL`,
            wall(script),
            cpu(script),
            dump.docs / wall(script),
            ratioWall,
            ratioCpu,
          ],
          [`tokenize-wiki run --concurrency ${cores}, jsonl`, wall(ours), cpu(ours), dump.docs / wall(ours), 1, 1],
        ],
      },
    ],
    figures: {
      cores,
      'python.wallS': wall(script),
      'python.cpuS': cpu(script),
      'ours.wallS': wall(ours),
      'ours.cpuS': cpu(ours),
      'ours/python.wall': ratioWall,
      'ours/python.cpu': ratioCpu,
    },
    notes,
  };
}
