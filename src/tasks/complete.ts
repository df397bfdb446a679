import type { Manifest } from '../manifest/schema.js';
import { joinUri, storeFor } from '../storage/index.js';
import { verifyRun, type VerifyReport } from './verify.js';

/** Verify the run and, when every doc is accounted for, mark it complete with `_SUCCESS` holding the totals. */
export async function completeRun(manifest: Manifest, outputPrefix: string, options: { deep: boolean }): Promise<VerifyReport> {
  const report = await verifyRun(manifest, outputPrefix, options);
  if (report.ok) {
    const uri = joinUri(outputPrefix, '_SUCCESS');
    await storeFor(uri).write(uri, JSON.stringify({ tasks: report.tasks, ...report.totals, verified_at: new Date().toISOString() }, null, 1) + '\n');
  }
  return report;
}

export function formatVerifyReport(report: VerifyReport): string {
  const t = report.totals;
  const lines = [
    `verify: ${report.ok ? 'OK' : 'FAILED'}: ${report.done}/${report.tasks} tasks done`,
    `  docs ${t.docs}, rows ${t.rows}, tokens ${t.tokens}, text ${(t.text_bytes / 1e6).toFixed(1)} MB, bad docs ${t.bad_docs}`,
    `  skipped: ${Object.entries(t.skipped).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}`,
  ];
  if (report.missing.length > 0) lines.push(`  missing markers (${report.missing.length}): ${report.missing.slice(0, 10).join(', ')}${report.missing.length > 10 ? ', …' : ''}`);
  for (const problem of report.problems.slice(0, 20)) lines.push(`  problem: ${problem}`);
  return lines.join('\n') + '\n';
}
