import { pino, type Logger } from 'pino';
import { logWriter } from './terminal.js';

export type { Logger };

/**
 * pino on stderr (stdout stays free for command output such as `status --json`), through the writer that also draws
 * the progress bar: JSON lines, or readable lines on a terminal (see terminal.ts).
 * Bindings such as run_id / task_id / job_id are added with `logger.child({...})`.
 */
export function createLogger(bindings: Record<string, unknown> = {}): Logger {
  return pino(
    { level: process.env.LOG_LEVEL ?? 'info', base: { ...bindings }, timestamp: pino.stdTimeFunctions.isoTime },
    logWriter,
  );
}

export const rootLogger: Logger = createLogger();
