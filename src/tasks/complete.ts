import { isDeepStrictEqual } from 'node:util';
import type { Manifest } from '../manifest/index.js';
import { SUCCESS_KEY } from '../output/index.js';
import { joinUri, readText, storeFor } from '../storage/index.js';
import { verifyRun, type VerifyReport } from './verify-run.js';

/**
 * Verify the run and, when every doc is accounted for, mark it complete with `_SUCCESS` holding the totals. A run
 * already marked with the same totals keeps its `_SUCCESS` (and the time it was first verified): re-running a
 * finished run changes nothing in its output.
 */
export async function completeRun(
  manifest: Manifest,
  outputPrefix: string,
  options: { deep: boolean },
): Promise<VerifyReport> {
  const report = await verifyRun(manifest, outputPrefix, options);
  if (report.ok) {
    const uri = joinUri(outputPrefix, SUCCESS_KEY);
    const totals = { tasks: report.tasks, ...report.totals };
    if (!isDeepStrictEqual(await markedTotals(uri), totals)) {
      await storeFor(uri).write(
        uri,
        JSON.stringify({ ...totals, verified_at: new Date().toISOString() }, null, 1) + '\n',
      );
    }
  }
  return report;
}

/** The totals an existing `_SUCCESS` holds; undefined when there is none (or it is not ours to trust). */
async function markedTotals(uri: string): Promise<unknown> {
  if (!(await storeFor(uri).stat(uri))) return undefined;
  try {
    const { verified_at: _verifiedAt, ...totals } = JSON.parse(await readText(uri)) as Record<string, unknown>;
    return totals;
  } catch {
    return undefined;
  }
}

export function formatVerifyReport(report: VerifyReport): string {
  const t = report.totals;
  const lines = [
    `verify: ${report.ok ? 'OK' : 'FAILED'}: ${report.done}/${report.tasks} tasks done`,
    `  docs ${t.docs}, rows ${t.rows}, tokens ${t.tokens}, text ${(t.text_bytes / 1e6).toFixed(1)} MB, bad docs ${t.bad_docs}`,
    `  skipped: ${
      Object.entries(t.skipped)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ') || 'none'
    }`,
  ];
  if (report.missing.length > 0)
    lines.push(
      `  missing markers (${report.missing.length}): ${report.missing.slice(0, 10).join(', ')}${report.missing.length > 10 ? ', …' : ''}`,
    );
  for (const problem of report.problems.slice(0, 20)) lines.push(`  problem: ${problem}`);
  return lines.join('\n') + '\n';
}
