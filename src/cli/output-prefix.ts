import { UsageError } from '../errors/index.js';

/** `--output-prefix URI` or its local alias `--output-dir PATH` (from the original checklist). */
export function outputPrefixOf(options: { outputPrefix?: string; outputDir?: string }): string {
  if (options.outputPrefix && options.outputDir) throw new UsageError('give --output-prefix or --output-dir, not both');
  const prefix = options.outputPrefix ?? options.outputDir;
  if (!prefix) throw new UsageError('missing --output-prefix (or --output-dir)');
  return prefix.replace(/\/+$/, '');
}
