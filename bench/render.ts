/**
 * Render a results file as Markdown (the tables of docs/performance.md):
 *   node --import tsx bench/render.ts bench/results/<date>-<host>.json
 */
import { readFileSync } from 'node:fs';
import type { MachineInfo } from './lib/machine.js';
import { renderTable, sectionTimesTable, targetsTable, type SectionResult } from './lib/report.js';
import { evaluateTargets } from './targets.js';

interface ResultsFile {
  started: string;
  totalS: number;
  complete?: boolean;
  mode: string;
  opts: { repeats: number; encoding: string };
  machine: MachineInfo;
  sections: SectionResult[];
}

const [file] = process.argv.slice(2);
if (!file) {
  console.error('usage: render.ts RESULTS.json');
  process.exit(2);
}
const r = JSON.parse(readFileSync(file, 'utf8')) as ResultsFile;
const m = r.machine;
const out: string[] = [
  `Run of ${r.started} (${r.mode} mode, median of ${r.opts.repeats}, ${r.opts.encoding}, ${Math.round(r.totalS)} s in all${r.complete === false ? '; interrupted: only the sections below ran' : ''}) on:`,
  '',
  `- ${m.nproc} cores: ${m.cpuModel}; ${m.ramGiB} GiB RAM; ${m.kernel}`,
  `- Node ${m.node}; ${m.python}`,
  '',
  // Targets are re-evaluated from the stored figures, so the explanatory column follows bench/targets.ts.
  renderTable(targetsTable(evaluateTargets(r.sections))),
];
for (const s of r.sections) {
  for (const t of s.tables) out.push('', renderTable(t));
  if (s.notes.length > 0) out.push('', ...s.notes.map((n) => `- ${n}`));
}
// Results files from before per-section times were recorded have no `seconds`: the table is left out for them.
if (r.sections.some((s) => s.seconds !== undefined)) out.push('', renderTable(sectionTimesTable(r.sections, r.totalS)));
console.log(out.join('\n'));
