// The one way tests start the CLI: as its own process (group), built or from source, with a clean environment.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from './paths.js';

/** The built CLI (tests run `npm run build` output, like a user does). */
export const CLI = join(repoRoot, 'bin', 'tokenize-wiki.js');

/**
 * Tests that run the CLI end to end: minutes only when the shared 2-core machine is busy (they measure, never
 * time), so they get more than vitest's default.
 */
export const CLI_TEST_TIMEOUT = 600_000;

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Peak RSS in MB of the process tree as `/usr/bin/time -v` saw it (only with `measure`). */
  maxRssMb?: number;
}

export interface CliOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Wrap in `/usr/bin/time -v` to measure peak RSS. */
  measure?: boolean;
  /** Run `src/` through tsx instead of the built CLI (no build needed; start-up is slower). */
  source?: boolean;
}

const SOURCE_ENTRY =
  "import('./src/cli/main.ts').then(async (m) => { process.exitCode = await m.main(process.argv.slice(1)); })";

function commandLine(args: readonly string[], options: CliOptions): string[] {
  const program = options.source ? ['--import', 'tsx', '--input-type=module', '-e', SOURCE_ENTRY] : [CLI];
  return options.measure ? ['-v', process.execPath, ...program, ...args] : [...program, ...args];
}

/**
 * Environment of a CLI run: no AWS settings from the developer's machine leak in, and no credential provider
 * reaches beyond loopback (the instance metadata service would be a non-loopback request).
 */
export function cliEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('AWS_') && key !== 'NODE_OPTIONS' && !key.startsWith('VITEST')) env[key] = value;
  }
  return {
    ...env,
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: '/nonexistent/aws-config',
    AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/aws-credentials',
    LOG_LEVEL: 'info',
    ...extra,
  };
}

/** Start `tokenize-wiki ARGS` as its own process group (so a test can kill it with all its children). */
export function startCli(
  args: readonly string[],
  options: CliOptions = {},
): { child: ChildProcess; done: Promise<CliResult> } {
  const cmd = options.measure ? '/usr/bin/time' : process.execPath;
  // The source entry imports ./src/… and resolves tsx from the working directory.
  const cwd = options.cwd ?? (options.source ? repoRoot : undefined);
  const env = cliEnv(options.source ? { NODE_NO_WARNINGS: '1', ...options.env } : options.env);
  const child = spawn(cmd, commandLine(args, options), { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<CliResult>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      const result: CliResult = { code, signal, stdout, stderr };
      if (options.measure) {
        const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr);
        if (rss) result.maxRssMb = Number(rss[1]) / 1024;
        // /usr/bin/time reports the command's status as its own; keep stderr to the program's lines.
        result.stderr = stderr.replace(
          /\n?(Command (exited with non-zero status|terminated by signal) \d+\n)?\tCommand being timed:[\s\S]*$/,
          '\n',
        );
      }
      resolve(result);
    });
  });
  return { child, done };
}

/** Run the CLI to completion (asynchronously: in-process test servers keep serving meanwhile). */
export async function cli(args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
  return startCli(args, options).done;
}

/** Run the CLI and fail with its output unless it exits 0. */
export async function cliOk(args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
  const result = await cli(args, options);
  if (result.code !== 0) {
    throw new Error(
      `tokenize-wiki ${args.join(' ')} exited ${result.code ?? result.signal}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr.slice(-4000)}`,
    );
  }
  return result;
}

/** Lines the program wrote on stderr that are not pino JSON log lines. */
export function plainStderr(result: CliResult): string[] {
  return result.stderr.split('\n').filter((line) => line.trim() !== '' && !line.startsWith('{'));
}

/** A CLI run against the harness's S3 server (`s3Env()`): from source, one attempt per S3 request. */
export function cliS3(args: readonly string[], env: Record<string, string>): Promise<CliResult> {
  return cli(args, { source: true, env: { ...env, AWS_MAX_ATTEMPTS: '1' } });
}
