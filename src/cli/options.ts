import { availableParallelism } from 'node:os';
import { InvalidArgumentError } from 'commander';
import { isOutputFormat, OUTPUT_FORMATS, type OutputFormat } from '../output/index.js';
import { checkEncodingName, type EncodingName } from '../tokenize/index.js';

/** Commander argument parsers: a bad value becomes a one-line usage error (exit 2) naming the flag. */
export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive whole number');
  return n;
}

export function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number ≥ 0');
  return n;
}

export function compressionLevel(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 9) throw new InvalidArgumentError('expected a gzip level from 1 to 9');
  return n;
}

export function encodingName(value: string): EncodingName {
  try {
    return checkEncodingName(value);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

export function outputFormat(value: string): OutputFormat {
  if (!isOutputFormat(value)) throw new InvalidArgumentError(`expected one of ${OUTPUT_FORMATS.join(', ')}`);
  return value;
}

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** `--tasks a,b,c` (or repeated). */
export function taskList(value: string, previous: string[] = []): string[] {
  return [
    ...previous,
    ...value
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  ];
}

export const defaultConcurrency = (): number => availableParallelism();
