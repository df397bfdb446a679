import { join } from 'node:path';
import { cliOutput, ensureCli } from '../lib/cli.js';
import { mainDump, type DumpFile } from '../lib/corpus.js';
import { median, runMeasured, runProbe } from '../lib/measure.js';
import type { SectionResult, Table } from '../lib/report.js';
import { ensureTool } from '../lib/tools.js';
import { freshPrefix } from '../pipeline/index.js';

export interface DecodeOptions {
  quick: boolean;
  repeats: number;
}

interface Sample {
  wallS: number;
  cpuS: number;
  source?: string;
}

interface Contender {
  name: string;
  run: (dump: DumpFile) => Promise<Sample>;
}

function external(name: string, cmd: string, args: string[]): Contender {
  return { name, run: (dump) => runMeasured(cmd, [...args, dump.path]) };
}

/** Part 2: decompression MB/s (of uncompressed output) per core, our reader vs the standard command-line tools. */
export async function benchDecode(opts: DecodeOptions): Promise<SectionResult> {
  const notes: string[] = [];
  const tables: Table[] = [];
  const figures: Record<string, number> = {};

  for (const format of ['gzip', 'bzip2'] as const) {
    const dump = await mainDump(opts.quick, format);
    const contenders: Contender[] = [];
    const skip = await ensureCli();
    if (skip) {
      notes.push(`SKIP ours (${format}): ${skip}`);
    } else {
      // One task covering the whole dump: the probe then reads it exactly as run-tasks reads a task.
      const manifest = join(await freshPrefix('decode', format), 'manifest.json');
      await cliOutput([
        'manifest',
        '--dump',
        dump.path,
        '--manifest-uri',
        manifest,
        '--max-docs-per-task',
        String(dump.docs + 1),
        '--max-task-mb',
        '100000',
      ]);
      contenders.push({ name: 'ours', run: () => runProbe<Sample>('decode/node-probe.ts', [manifest]) });
    }
    if (format === 'gzip') {
      contenders.push(external('zcat', 'zcat', []));
    } else {
      contenders.push(external('bzip2 -dc', 'bzip2', ['-dc']));
      const noLbzip2 = ensureTool('lbzip2', 'lbzip2');
      if (noLbzip2) notes.push(`SKIP lbzip2: ${noLbzip2}`);
      // Single-threaded only: the figure is MB/s per core, and `lbzip2 -n<nproc>` only showed (at ~15 s a run) that
      // extra threads cost CPU time on a machine with no idle core.
      else contenders.push(external('lbzip2 -dc -n1', 'lbzip2', ['-dc', '-n1']));
    }

    const samples = new Map<string, Sample[]>();
    for (let rep = 0; rep < opts.repeats; rep++) {
      for (const c of contenders) samples.set(c.name, [...(samples.get(c.name) ?? []), await c.run(dump)]);
    }
    const ourSource = samples.get('ours')?.[0]?.source;
    if (ourSource) notes.push(`${format} ours = ${ourSource} of a one-task manifest covering the dump`);
    const mb = dump.uncompressedBytes / 1e6;
    const rows = contenders.map((c) => {
      const s = samples.get(c.name)!;
      return { name: c.name, mbPerS: mb / median(s.map((x) => x.wallS)), mbPerCpuS: mb / median(s.map((x) => x.cpuS)) };
    });
    const ourRow = rows.find((r) => r.name === 'ours');
    for (const r of rows) {
      figures[`${format}.${r.name}.mbPerS`] = r.mbPerS;
      figures[`${format}.${r.name}.mbPerCpuS`] = r.mbPerCpuS;
      if (ourRow && r !== ourRow) figures[`${format}.ours/${r.name}.mbPerCpuS`] = ourRow.mbPerCpuS / r.mbPerCpuS;
    }
    tables.push({
      title: `Decoding ${format}: ${mb.toFixed(0)} MB uncompressed, ${(dump.compressedBytes / 1e6).toFixed(1)} MB compressed (MB/s of output, median of ${opts.repeats})`,
      headers: ['decoder', 'MB/s', 'MB/s per core', 'ours ÷ this (per core)'],
      rows: rows.map((r) => [r.name, r.mbPerS, r.mbPerCpuS, ourRow ? ourRow.mbPerCpuS / r.mbPerCpuS : 'n/a']),
    });
  }
  return { section: 'decode', tables, figures, notes };
}
