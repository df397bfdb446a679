/**
 * Errors that carry their exit code, so the CLI maps failures to the contract:
 * 0 success, 1 task or run failure, 2 bad usage or bad input.
 */
export class UsageError extends Error {
  readonly exitCode = 2;
  override name = 'UsageError';
}

/** Input that cannot be processed as given (bad run file, bad manifest, unreadable URI, missing credentials). */
export class InputError extends Error {
  readonly exitCode = 2;
  override name = 'InputError';
}

/** A task or run failed; re-running may succeed (or the data needs a person). */
export class TaskFailure extends Error {
  readonly exitCode = 1;
  override name = 'TaskFailure';
}

export function exitCodeOf(error: unknown): number {
  if (error instanceof UsageError || error instanceof InputError || error instanceof TaskFailure) return error.exitCode;
  return 1;
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
