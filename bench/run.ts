/**
 * `npm run bench`: every comparison, side by side on the same inputs, median of repeats,
 * ratio tables, and the targets table. Full mode writes bench/results/<date>-<host>.json.
 *
 *   npm run bench                 full run: 394-426 s on 2 cores (2026-11-28, load average 1-4, inputs cached; the
 *                                 budget is 10 minutes; the first run on a machine also generates ~1.9 GB of inputs)
 *   npm run bench -- --quick      tiny inputs, one repeat: only checks that every part runs (CI); 45 s
 *
 * The "Time per section" table at the end (and `seconds` on every section of the results file) shows where it goes.
 *   npm run bench -- --only tokenizer,decode
 *   npm run bench -- --only pipeline --cpu-prof /tmp/prof    profile before optimising
 */
import { Command, InvalidArgumentError } from 'commander';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { benchBaseline } from './baseline/index.js';
import { benchDecode } from './decode/index.js';
import { setCpuProfileDir } from './lib/cli.js';
import { describeMachine } from './lib/machine.js';
import { benchCacheDir, benchDir } from './lib/paths.js';
import { renderTable, sectionTimesTable, targetsTable, type SectionResult } from './lib/report.js';
import { evaluateTargets } from './targets.js';
import { benchMemory, benchPipeline, benchScaling } from './pipeline/index.js';
import { benchPlainPython } from './plain-python/index.js';
import { benchRandomAccess } from './random-access/index.js';
import { benchTokenizer } from './tokenizer/index.js';

export interface BenchOptions {
  quick: boolean;
  repeats: number;
  encoding: string;
}

const SECTIONS: Record<string, (o: BenchOptions) => Promise<SectionResult>> = {
  tokenizer: benchTokenizer,
  decode: benchDecode,
  pipeline: benchPipeline,
  scaling: benchScaling,
  memory: benchMemory,
  baseline: benchBaseline,
  'plain-python': benchPlainPython,
  'random-access': benchRandomAccess,
};

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

function sectionList(v: string): string[] {
  const names = v.split(',').map((s) => s.trim());
  const unknown = names.filter((n) => !(n in SECTIONS));
  if (unknown.length > 0)
    throw new InvalidArgumentError(
      `unknown section(s) ${unknown.join(', ')}; known: ${Object.keys(SECTIONS).join(', ')}`,
    );
  return names;
}

async function main(): Promise<number> {
  const program = new Command('bench')
    .description(
      'Benchmarks: tokenizer, decoding, pipeline, scaling, memory, predecessor baseline, plain Python script, random access',
    )
    .option('--quick', 'tiny inputs and one repeat: checks that everything runs (CI)', false)
    .option('--repeats <n>', 'repeats per comparison (the median is reported); default 3, 1 with --quick', positiveInt)
    .option('--only <sections>', `comma-separated subset of: ${Object.keys(SECTIONS).join(', ')}`, sectionList)
    .option('--encoding <name>', 'tiktoken encoding', 'cl100k_base')
    .option(
      '--cpu-prof <dir>',
      'also write V8 CPU profiles of every measured tokenize-wiki run to <dir> (open in Chrome DevTools)',
    )
    .option('--out <file>', 'results file (default: bench/results/<date>-<host>.json; under ~/.cache with --quick)')
    .exitOverride();
  try {
    program.parse(process.argv);
  } catch {
    return 2;
  }
  const flags = program.opts<{
    quick: boolean;
    repeats?: number;
    only?: string[];
    encoding: string;
    out?: string;
    cpuProf?: string;
  }>();
  setCpuProfileDir(flags.cpuProf);
  const opts: BenchOptions = {
    quick: flags.quick,
    repeats: flags.repeats ?? (flags.quick ? 1 : 3),
    encoding: flags.encoding,
  };
  const machine = describeMachine();
  const started = new Date();
  console.log(
    `bench: ${opts.quick ? 'quick' : 'full'} mode, ${opts.repeats} repeat(s), ${machine.nproc} cores, ${machine.cpuModel}`,
  );

  const date = started.toISOString().slice(0, 10);
  const out =
    flags.out ??
    (opts.quick
      ? join(benchCacheDir('results'), `${date}-${machine.host}-quick.json`)
      : join(benchDir, 'results', `${date}-${machine.host}.json`));
  mkdirSync(join(out, '..'), { recursive: true });
  const results: SectionResult[] = [];
  // Rewritten after every section, so an interrupted run still leaves the figures it has (marked complete: false).
  const save = (complete: boolean): number => {
    const totalS = (Date.now() - started.getTime()) / 1000;
    const doc = {
      started: started.toISOString(),
      totalS,
      complete,
      mode: opts.quick ? 'quick' : 'full',
      opts,
      machine,
      targets: evaluateTargets(results),
      sections: results,
    };
    writeFileSync(`${out}.tmp`, JSON.stringify(doc, null, 2) + '\n');
    renameSync(`${out}.tmp`, out);
    return totalS;
  };

  let failed = false;
  for (const name of flags.only ?? Object.keys(SECTIONS)) {
    const t0 = Date.now();
    console.log(`\n== ${name}`);
    let r: SectionResult;
    try {
      r = await SECTIONS[name]!(opts);
      for (const t of r.tables) console.log(`\n${renderTable(t)}`);
      for (const n of r.notes) console.log(`  ${n}`);
    } catch (err) {
      failed = true;
      const message = err instanceof Error ? err.message : String(err);
      console.log(`  FAILED: ${message}`);
      r = { section: name, tables: [], figures: {}, notes: [`FAILED: ${message}`] };
    }
    r.seconds = Math.round((Date.now() - t0) / 100) / 10;
    results.push(r);
    console.log(`  (${name}: ${r.seconds.toFixed(0)} s)`);
    save(false);
  }

  console.log(`\n${renderTable(targetsTable(evaluateTargets(results)))}`);
  if (opts.quick) console.log('\n(quick mode: tiny inputs, the ratios only show that each part runs)');
  const totalS = save(true);
  console.log(`\n${renderTable(sectionTimesTable(results, totalS))}`);
  console.log(`\nbench: ${totalS.toFixed(0)} s; results in ${out}`);
  return failed ? 1 : 0;
}

process.exitCode = await main();
