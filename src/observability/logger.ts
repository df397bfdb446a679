import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * pino JSON on stderr (stdout stays free for command output such as `status --json`).
 * Bindings such as run_id / task_id / job_id are added with `logger.child({...})`.
 */
export function createLogger(bindings: Record<string, unknown> = {}): Logger {
  return pino(
    { level: process.env.LOG_LEVEL ?? 'info', base: { ...bindings }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ dest: 2, sync: true }),
  );
}

export const rootLogger: Logger = createLogger();
