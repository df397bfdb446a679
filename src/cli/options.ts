import { availableParallelism } from 'node:os';
import { InvalidArgumentError, type Command } from 'commander';
import { isLogFormat, LOG_FORMATS, type LogFormat, type LogSettings } from '../observability/index.js';
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

export function logFormat(value: string): LogFormat {
  if (!isLogFormat(value)) throw new InvalidArgumentError(`expected one of ${LOG_FORMATS.join(', ')}`);
  return value;
}

/** Flags of the log's two faces, on every command: JSON lines for machines, readable lines on a terminal. */
export function addLogFlags(command: Command): Command {
  return command
    .option(
      '--log-format <format>',
      'log lines on stderr: pretty (readable, above the progress bar), json (one JSON object a line), or auto (pretty on a terminal, json elsewhere)',
      logFormat,
      'auto',
    )
    .option('-v, --verbose', 'on the terminal, also show the routine per-task and per-dump log lines', false);
}

/** The log settings of a parsed command (every command has the flags of addLogFlags). */
export function logSettingsOf(command: Command): LogSettings {
  const { logFormat: format, verbose } = command.opts<{ logFormat: LogFormat; verbose: boolean }>();
  return { format, verbose };
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
