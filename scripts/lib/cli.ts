// Flag parsing, --help, --dry-run and the exit-code contract shared by every script.
import { realpathSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { DryRunHost, shellQuote, ZxHost, type Host } from './host.js';
import { ScriptError, UsageError } from './errors.js';
import { Logger, type ScriptIO } from './run.js';

type Options = NonNullable<ParseArgsConfig['options']>;

export interface ScriptSpec<O extends Options> {
  name: string;
  usage: string;
  options: O;
  /** Does the script change the host? Read-only scripts print their queries in a dry run. */
  readOnly?: boolean;
}

export const COMMON_OPTIONS = {
  'dry-run': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies Options;

export function parseFlags<O extends Options>(spec: ScriptSpec<O>, argv: readonly string[]) {
  try {
    return parseArgs({
      args: [...argv],
      options: { ...COMMON_OPTIONS, ...spec.options },
      strict: true,
      allowPositionals: false,
    });
  } catch (e) {
    throw new UsageError(`${(e as Error).message.split('\n')[0]} (see --help)`);
  }
}

export interface ScriptContext {
  io: ScriptIO;
  host: Host;
  log: Logger;
  /** Prints a plan or report line to stdout. */
  out: (line: string) => void;
}

/**
 * Runs one script: parses flags, prints --help, wraps the host for --dry-run, and turns errors
 * into one stderr line and exit code (0 ok, 1 failure or refusal, 2 bad usage).
 */
export async function runScript<O extends Options>(
  spec: ScriptSpec<O>,
  argv: readonly string[],
  io: ScriptIO,
  body: (flags: ReturnType<typeof parseFlags<O>>['values'], ctx: ScriptContext) => Promise<number | void>,
): Promise<number> {
  try {
    const { values } = parseFlags(spec, argv);
    const common = values as { help?: boolean; 'dry-run'?: boolean };
    if (common.help) {
      io.out(spec.usage.trim());
      return 0;
    }
    const dryRun = common['dry-run'] === true;
    const host = dryRun ? new DryRunHost(io.host, io.out, spec.readOnly === true) : io.host;
    const log = new Logger(spec.name, io);
    if (dryRun) io.out(`# ${spec.name} ${argv.map(shellQuote).join(' ')}: commands a real run would execute, in order`);
    const code = await body(values, { io, host, log, out: io.out });
    return code ?? 0;
  } catch (e) {
    if (e instanceof ScriptError) {
      io.err(`${spec.name}: ${e instanceof UsageError ? 'usage error' : 'error'}: ${e.message}`);
      return e.exitCode;
    }
    io.err(`${spec.name}: error: ${(e as Error).message}`);
    return 1;
  }
}

/** The real process: zx host, stdout/stderr, the repo this script lives in. */
export function processIO(scriptUrl: string): ScriptIO {
  return {
    host: new ZxHost(),
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
    env: process.env,
    repoRoot: resolve(dirname(fileURLToPath(scriptUrl)), '..'),
    now: () => performance.now(),
  };
}

/** True when the module at scriptUrl is the program being run (not imported by a test). */
export function isMain(scriptUrl: string): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return pathToFileURL(realpathSync(entry)).href === pathToFileURL(realpathSync(fileURLToPath(scriptUrl))).href;
  } catch {
    return false;
  }
}

/** Entry point used at the bottom of every script. */
export async function main(
  scriptUrl: string,
  run: (argv: readonly string[], io: ScriptIO) => Promise<number>,
): Promise<void> {
  if (!isMain(scriptUrl)) return;
  process.exitCode = await run(process.argv.slice(2), processIO(scriptUrl));
}
