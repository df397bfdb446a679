import './quiet-logs.js';
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { synthLegacyDump, synthPartsDump } from '../../src/dumps/synth.js';
import { StagingRecordSchema, type StagingRecord } from '../../src/stage/index.js';
import { startCli, type CliResult } from '../harness/cli.js';

export const PARTS_PATH = 'other/cirrus_search_index/20261122/index_name=synthwiki_content';
export const LEGACY_NAME = 'synthwiki-20261122-cirrussearch-content.json.gz';
export const LEGACY_PATH = `other/cirrussearch/20261122/${LEGACY_NAME}`;
export const PART_NAMES = [0, 1, 2].map((p) => `synthwiki_content-20261122-0000${p}.json.bz2`);
export const AGENT = 'tokenize-wiki-tests/1.0 (stage suite; tests@example.org)';

/** A served tree with both layouts: three .json.bz2 parts with _SUCCESS, and a two-member legacy .json.gz. */
export async function synthTree(label: string): Promise<string> {
  const root = mkdtempSync(join(tmpdir(), `tw-stage-${label}-`));
  await synthPartsDump(join(root, PARTS_PATH), {
    docs: 240,
    seed: 31,
    wiki: 'synthwiki',
    members: 1,
    parts: 3,
    bigPageMb: 0,
  });
  mkdirSync(join(root, 'other/cirrussearch/20261122'), { recursive: true });
  await synthLegacyDump(join(root, LEGACY_PATH), {
    docs: 120,
    seed: 32,
    wiki: 'synthwiki',
    members: 2,
    parts: 1,
    bigPageMb: 0,
  });
  return root;
}

export const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** `tokenize-wiki stage ARGS` as a child process (its own process group), as a person or a Job runs it. */
export function startStageChild(args: readonly string[]): { child: ChildProcess; done: Promise<CliResult> } {
  return startCli(['stage', '--user-agent', AGENT, ...args], { source: true });
}

/**
 * `tokenize-wiki stage ARGS` through the CLI's own `main`, in this process: a child process costs seconds of
 * start-up on a busy 2-core machine. Output is captured; exit code, stdout and stderr are what the binary would give.
 */
export async function stage(args: readonly string[]): Promise<CliResult> {
  const { main } = await import('../../src/cli/main.js');
  const out: string[] = [];
  const err: string[] = [];
  const capture = (stream: NodeJS.WriteStream, into: string[]) => {
    const original = stream.write.bind(stream);
    stream.write = (chunk: string | Uint8Array) => {
      into.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
      return true;
    };
    return () => (stream.write = original);
  };
  const restoreOut = capture(process.stdout, out);
  const restoreErr = capture(process.stderr, err);
  try {
    const code = await main(['stage', '--user-agent', AGENT, ...args]);
    return { code, signal: null, stdout: out.join(''), stderr: err.join('') };
  } finally {
    restoreOut();
    restoreErr();
    // The command sets the exit code of its process; this process runs more commands and must exit 0 itself.
    process.exitCode = undefined;
  }
}

/** Fail with the program's output unless it exited with `code`. */
export function expectExit(result: CliResult, code: number): CliResult {
  if (result.code !== code)
    throw new Error(
      `stage exited ${result.code}, expected ${code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr.slice(-4000)}`,
    );
  return result;
}

/** Every file under a folder (relative path → bytes), skipping nothing: temp files would show up here. */
export function filesUnder(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  if (!existsSync(dir)) return out;
  const walk = (sub: string): void => {
    for (const entry of readdirSync(join(dir, sub), { withFileTypes: true })) {
      const rel = sub ? `${sub}/${entry.name}` : entry.name;
      if (entry.isDirectory()) walk(rel);
      else out.set(rel, readFileSync(join(dir, rel)));
    }
  };
  walk('');
  return out;
}

export const mtimeOf = (path: string): number => statSync(path).mtimeMs;

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** The staging record of `name` in a staged local folder, schema-checked. */
export function readRecord(folder: string, name: string): StagingRecord {
  return StagingRecordSchema.parse(JSON.parse(readFileSync(join(folder, '_staging', `${name}.json`), 'utf8')));
}
