/** A printed table: the bench prints each one and stores it verbatim in the results file. */
export interface Table {
  title: string;
  headers: string[];
  rows: (string | number)[][];
}

/** What one bench section hands back: tables to print, raw figures for the results file, and notes (skips, caveats). */
export interface SectionResult {
  section: string;
  tables: Table[];
  figures: Record<string, number>;
  notes: string[];
  /** Wall seconds of the whole section, input preparation included (absent in results files from before it was recorded). */
  seconds?: number;
}

/** One line of the target table. measured is null when the section could not run. */
export interface TargetResult {
  figure: string;
  target: string;
  measured: number | null;
  unit: string;
  met: boolean | null;
  limitedBy: string;
}

export function fmt(x: number | string, digits?: number): string {
  if (typeof x === 'string') return x;
  if (!Number.isFinite(x) || (digits === undefined && Number.isInteger(x))) return String(x);
  const d = digits ?? (Math.abs(x) >= 100 ? 0 : Math.abs(x) >= 10 ? 1 : 2);
  return x.toFixed(d);
}

export function renderTable(t: Table): string {
  const cells = [t.headers, ...t.rows.map((r) => r.map((c) => fmt(c)))];
  const widths = t.headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string => '| ' + r.map((c, i) => c.padEnd(widths[i]!)).join(' | ') + ' |';
  const sep = '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|';
  return [`### ${t.title}`, '', line(cells[0]!), sep, ...cells.slice(1).map(line)].join('\n');
}

export function targetsTable(targets: readonly TargetResult[]): Table {
  return {
    title: 'Targets',
    headers: ['figure', 'target', 'measured', 'result', 'limited by'],
    rows: targets.map((t) => [
      t.figure,
      t.target,
      t.measured === null ? 'not measured' : `${fmt(t.measured)}${t.unit}`,
      t.met === null ? 'n/a' : t.met ? 'met' : 'missed',
      t.limitedBy,
    ]),
  };
}

/** Where the bench's time went: one row per section and the total, so every results file shows the time budget. */
export function sectionTimesTable(sections: readonly SectionResult[], totalS: number): Table {
  return {
    title: 'Time per section',
    headers: ['section', 'wall s', 'share'],
    rows: [
      ...sections.map((s) => [
        s.section,
        s.seconds?.toFixed(1) ?? 'not recorded',
        s.seconds === undefined ? '' : `${((100 * s.seconds) / totalS).toFixed(0)} %`,
      ]),
      ['all (with start-up and build)', totalS.toFixed(1), ''],
    ],
  };
}
