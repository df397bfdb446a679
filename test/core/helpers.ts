import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { BatchInput } from '../../src/tokenize/batch.js';
import { repoRoot } from '../harness/paths.js';

/** The built CLI (tests run `npm run build` output, like a user does). */
export const CLI = join(repoRoot, 'bin', 'tokenize-wiki.js');

/**
 * Tests that run the CLI end to end: minutes only when the shared 2-core machine is busy (they measure, never
 * time), so they get more than vitest's default.
 */
export const CLI_TEST_TIMEOUT = 600_000;

/** The real CirrusSearch sample (never copied into the repo). */
export const SAMPLE = join(repoRoot, 'test', 'fixtures', 'simplewikibooks', 'simplewikibooks-sample-200.json.gz');

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
export function startCli(args: readonly string[], options: CliOptions = {}): { child: ChildProcess; done: Promise<CliResult> } {
  const cmd = options.measure ? '/usr/bin/time' : process.execPath;
  const argv = options.measure ? ['-v', process.execPath, CLI, ...args] : [CLI, ...args];
  const child = spawn(cmd, argv, { cwd: options.cwd, env: cliEnv(options.env), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
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
        result.stderr = stderr.replace(/\n?(Command (exited with non-zero status|terminated by signal) \d+\n)?\tCommand being timed:[\s\S]*$/, '\n');
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
    throw new Error(`tokenize-wiki ${args.join(' ')} exited ${result.code ?? result.signal}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr.slice(-4000)}`);
  }
  return result;
}

/** Lines the program wrote on stderr that are not pino JSON log lines. */
export function plainStderr(result: CliResult): string[] {
  return result.stderr.split('\n').filter((line) => line.trim() !== '' && !line.startsWith('{'));
}

export function tempDir(label: string): string {
  return mkdtempSync(join(tmpdir(), `tw-core-${label}-`));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export const sha256 = (bytes: Uint8Array | string): string => createHash('sha256').update(bytes).digest('hex');

export interface ShardRow {
  page_id: number;
  title: string;
  namespace: number;
  wiki: string;
  revision: number | null;
  n_tokens: number;
  tokens: number[];
}

/** Every row of a (multi-member) gzip shard, in order. */
export function shardRows(bytes: Buffer): ShardRow[] {
  const text = gunzipSync(bytes).toString('utf8');
  return text === '' ? [] : text.trimEnd().split('\n').map((line) => JSON.parse(line) as ShardRow);
}

/** Files under `dir` (relative name → {sha256, mtimeMs}), for "nothing was rewritten" checks. */
export function snapshot(dir: string): Map<string, { sha256: string; mtimeMs: number }> {
  const out = new Map<string, { sha256: string; mtimeMs: number }>();
  const walk = (sub: string): void => {
    for (const entry of readdirSync(join(dir, sub), { withFileTypes: true })) {
      const rel = sub ? `${sub}/${entry.name}` : entry.name;
      if (entry.isDirectory()) walk(rel);
      else out.set(rel, { sha256: sha256(readFileSync(join(dir, rel))), mtimeMs: statSync(join(dir, rel)).mtimeMs });
    }
  };
  walk('');
  return out;
}

/** The documents of a CirrusSearch dump as JSON lines (index line, document line, …). */
export function dumpLines(docs: ReadonlyArray<{ index: string; doc: string }>): string {
  return docs.map((d) => `${d.index}\n${d.doc}\n`).join('');
}

/** The pairs of a decoded dump: index line and parsed document. */
export function dumpDocs(decoded: string): Array<{ index: unknown; doc: Record<string, unknown> }> {
  const lines = decoded.split('\n').filter((l) => l !== '');
  const out: Array<{ index: unknown; doc: Record<string, unknown> }> = [];
  for (let i = 0; i + 1 < lines.length; i += 2) out.push({ index: JSON.parse(lines[i] as string), doc: JSON.parse(lines[i + 1] as string) });
  return out;
}

export const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A batch of the given dump lines (index line, document line, …), as the task executor would hand it over. */
export function batchInput(lines: string[], overrides: Partial<BatchInput> = {}): BatchInput {
  return {
    bytes: new TextEncoder().encode(lines.join('\n') + '\n'),
    firstLine: 11,
    firstOffset: 5000,
    dump: 'testwiki-20261122-legacy',
    wiki: 'testwiki',
    textField: 'text',
    appendEot: false,
    compressionLevel: 3,
    format: 'jsonl',
    ...overrides,
  };
}
