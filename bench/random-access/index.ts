import { join } from 'node:path';
import { ensureCli, runCli } from '../lib/cli.js';
import { ensureSynthDump } from '../lib/corpus.js';
import { runProbe } from '../lib/measure.js';
import type { SectionResult, Table } from '../lib/report.js';
import { freshPrefix, type PipelineOptions } from '../pipeline/index.js';

interface ProbeResult {
  tasks: number;
  accessKinds: string[];
  uncompressedBytes: number;
  decodedBytes: number;
  firstTaskFirstDocS: number;
  lastTaskFirstDocS: number;
}

/**
 * Random-access figures: manifest pass throughput (MB/s compressed), bytes decoded by all tasks ÷ uncompressed size,
 * and time to the first doc of the last task ÷ that of the first task, for a gzip dump and a bzip2 part.
 */
export async function benchRandomAccess(opts: PipelineOptions): Promise<SectionResult> {
  const skip = await ensureCli();
  if (skip) return { section: 'random-access', tables: [], figures: {}, notes: [`SKIP random-access: ${skip}`] };
  const figures: Record<string, number> = {};
  const rows: Table['rows'] = [];
  const notes: string[] = [];
  // Full mode: about 1 GB (gzip) and 300 MB (bzip2) uncompressed; synth pages average ~13.6 KB.
  // The gzip dump (615 MB of article text) is also the full run's input with at least 200 MB of article text the
  // full bench is meant to cover: shrink it below ~32,000 docs only if another section keeps such an input.
  const docs = { gzip: opts.quick ? 300 : 95_000, bzip2: opts.quick ? 300 : 28_000 };
  const docsPerTask = opts.quick ? 100 : 2000;
  // Reaching a task's first doc takes milliseconds, so a median of 31 costs a few seconds per format and steadies a
  // ratio of two millisecond figures (with 3, the same dumps gave last ÷ first between 0.9 and 2.2).
  const firstDocRepeats = Math.max(31, opts.repeats);
  for (const format of ['gzip', 'bzip2'] as const) {
    const dump = await ensureSynthDump({ docs: docs[format], format });
    // One manifest pass per format: on 1.3 GB it is long, and it is a throughput of our own code, not a comparison.
    const manifest = join(await freshPrefix('random-access', format), 'manifest.json');
    const pass = await runCli([
      'manifest',
      '--dump',
      dump.path,
      '--manifest-uri',
      manifest,
      '--max-docs-per-task',
      String(docsPerTask),
    ]);
    const probe = await runProbe<ProbeResult>('random-access/probe.ts', [manifest, String(firstDocRepeats)]);
    const mb = dump.compressedBytes / 1e6;
    const decodedRatio = probe.decodedBytes / probe.uncompressedBytes;
    const ttfrRatio = probe.lastTaskFirstDocS / probe.firstTaskFirstDocS;
    Object.assign(figures, {
      [`${format}.manifest.mbPerS`]: mb / pass.wallS,
      [`${format}.manifest.mbPerCpuS`]: mb / pass.cpuS,
      [`${format}.tasks`]: probe.tasks,
      [`${format}.decodedRatio`]: decodedRatio,
      [`${format}.ttfrRatio`]: ttfrRatio,
    });
    rows.push([
      format,
      `${mb.toFixed(0)} MB → ${(dump.uncompressedBytes / 1e6).toFixed(0)} MB`,
      probe.tasks,
      probe.accessKinds.join(','),
      mb / pass.wallS,
      mb / pass.cpuS,
      decodedRatio,
      `${(probe.firstTaskFirstDocS * 1000).toFixed(0)} / ${(probe.lastTaskFirstDocS * 1000).toFixed(0)} ms`,
      ttfrRatio,
    ]);
  }
  notes.push(
    "time to first row is measured to the first byte of the task's first doc from its access point (decode only)",
  );
  return {
    section: 'random-access',
    tables: [
      {
        title: `Random access: one manifest pass per dump; every task read from its access point; first doc median of ${firstDocRepeats}`,
        headers: [
          'format',
          'dump (compressed → plain)',
          'tasks',
          'access',
          'manifest MB/s',
          'manifest MB/s per core',
          'decoded ÷ size',
          'first doc: first / last task',
          'last ÷ first',
        ],
        rows,
      },
    ],
    figures,
    notes,
  };
}
