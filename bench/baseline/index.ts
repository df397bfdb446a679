import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { startRayHead } from '../../test/harness/ray.js';
import { ensureCli, runCli } from '../lib/cli.js';
import { ensureSynthDump } from '../lib/corpus.js';
import { median } from '../lib/measure.js';
import { benchDir } from '../lib/paths.js';
import { pythonEnv } from '../lib/python.js';
import type { SectionResult } from '../lib/report.js';
import { freshPrefix, type PipelineOptions } from '../pipeline/index.js';
import { runRayJob } from './ray-jobs.js';

const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * Part 3d: the predecessor's design (one driver streams the dump, one Ray task per page, tiktoken) vs our run-tasks,
 * both as Ray jobs on the same local head with the same CPUs, on the same dump: docs/s per core.
 */
export async function benchBaseline(opts: PipelineOptions): Promise<SectionResult> {
  const skip = (await ensureCli()) ?? (await pythonEnv().then((p) => ('skip' in p ? p.skip : null)));
  if (skip) return { section: 'baseline', tables: [], figures: {}, notes: [`SKIP baseline: ${skip}`] };
  const cores = availableParallelism();
  const dump = await ensureSynthDump({ docs: opts.quick ? 100 : 3000, format: 'gzip' });
  const head = await startRayHead({ numCpus: cores });
  const url = head.connection.dashboardUrl;
  const pred: number[] = [];
  const ours: number[] = [];
  const manifestS: number[] = [];
  try {
    for (let rep = 0; rep < opts.repeats; rep++) {
      const predOut = await freshPrefix('baseline', `predecessor-r${rep}`);
      const p = await runRayJob(url, `python ${quote(join(benchDir, 'baseline', 'predecessor.py'))} --dump ${quote(dump.path)} --out ${quote(predOut)}`);
      pred.push(p.wallS);

      const prefix = await freshPrefix('baseline', `ours-r${rep}`);
      const manifest = join(prefix, 'manifest.json');
      // Our manifest pass is part of our design's cost, so it is charged to ours (it runs on the same machine).
      manifestS.push((await runCli(['manifest', '--dump', dump.path, '--manifest-uri', manifest, '--encoding', opts.encoding])).wallS);
      const o = await runRayJob(url, `tokenize-wiki run-tasks --manifest-uri ${quote(manifest)} --output-prefix ${quote(prefix)} --concurrency ${cores}`, {
        entrypointNumCpus: cores,
      });
      ours.push(o.wallS + manifestS[rep]!);
    }
  } finally {
    await head.stop();
  }
  const predRate = dump.docs / median(pred) / cores;
  const ourRate = dump.docs / median(ours) / cores;
  return {
    section: 'baseline',
    tables: [
      {
        title: `Against the predecessor's design: ${dump.docs} docs (${(dump.uncompressedBytes / 1e6).toFixed(0)} MB), Ray head with ${cores} CPUs, median of ${opts.repeats}`,
        headers: ['design', 'wall s', 'docs/s', 'docs/s per core', 'ours ÷ this'],
        rows: [
          ['predecessor: driver streams, one Ray task per page (tiktoken)', median(pred), dump.docs / median(pred), predRate, ourRate / predRate],
          ['ours: manifest + run-tasks as one Ray job', median(ours), dump.docs / median(ours), ourRate, 1],
        ],
      },
    ],
    figures: { docs: dump.docs, 'predecessor.docsPerSPerCore': predRate, 'ours.docsPerSPerCore': ourRate, 'ours/predecessor.docsPerCpuS': ourRate / predRate, 'ours.manifestS': median(manifestS) },
    notes: ['wall time per job as the Ray head recorded it (start to end); ours includes its manifest pass, run before the job'],
  };
}
