/** Errors that end a script with a one-line message and a fixed exit code. */
export class ScriptError extends Error {
  constructor(
    message: string,
    readonly exitCode: 1 | 2,
  ) {
    super(message);
  }
}

/** Bad flags or arguments: exit 2. */
export class UsageError extends ScriptError {
  constructor(message: string) {
    super(message, 2);
  }
}

/** The host is not fit for the script (OS, root, preflight): exit 1, nothing was changed. */
export class RefusalError extends ScriptError {
  constructor(message: string) {
    super(message, 1);
  }
}
