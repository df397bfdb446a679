// The operations docs stay true to the tree: every relative link resolves, and every `tokenize-wiki …`
// command they show is a real command used with real flags (read from the CLI's own command tree).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/main.js';
import { repoRoot } from '../harness/paths.js';

const DOCS = [
  'docs/observability.md',
  ...readdirSync(path.join(repoRoot, 'docs/runbooks'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/runbooks/${f}`),
];

/** `tokenize-wiki …` invocations in code blocks and code spans (not `kubectl -n tokenize-wiki`), continuations joined. */
function invocations(text: string): string[] {
  const code = [...text.matchAll(/```[a-z]*\n([\s\S]*?)```/g)].map((m) => (m[1] ?? '').replace(/\\\n\s*/g, ' '));
  const spans = [...text.replace(/```[\s\S]*?```/g, '').matchAll(/`([^`\n]+)`/g)].map((m) => m[1] ?? '');
  return [...code.flatMap((c) => c.split('\n')), ...spans].flatMap((line) =>
    [...line.matchAll(/(?<!-n |--namespace[ =])(?<![\w/.=-])tokenize-wiki\s+([a-z][a-z-]*(?:\s+[^|;&#]*)?)/g)].map(
      (m) => (m[1] ?? '').trim(),
    ),
  );
}

/** Problems with one invocation: unknown command or subcommand, or a flag the command does not have. */
function problemsOf(invocation: string, program: Command): string[] {
  const words = invocation.split(/\s+/);
  let cmd: Command | undefined = program;
  let i = 0;
  // Descend through subcommands (`lifecycle apply`) while the next word names one.
  while (i < words.length && cmd.commands.length > 0) {
    const next: Command | undefined = cmd.commands.find((c) => c.name() === words[i]);
    if (!next)
      return cmd === program
        ? [`unknown command "${words[i] ?? ''}"`]
        : [`${cmd.name()}: unknown subcommand "${words[i] ?? ''}"`];
    cmd = next;
    i++;
  }
  const flags = new Set(cmd.options.flatMap((o) => [o.long, o.short]).filter((f): f is string => f !== undefined));
  flags.add('--help');
  return words
    .slice(i)
    .filter((w) => w.startsWith('--'))
    .map((w) => w.split('=')[0] ?? w)
    .filter((f) => !flags.has(f))
    .map((f) => `${cmd.name()}: no flag ${f}`);
}

describe('operations docs', () => {
  it.each(DOCS)('%s: every relative link resolves', (doc) => {
    const text = readFileSync(path.join(repoRoot, doc), 'utf8');
    const broken = [...text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)]
      .map((m) => m[1] ?? '')
      .filter((target) => !/^[a-z]+:/.test(target))
      .filter((target) => !existsSync(path.join(repoRoot, path.dirname(doc), target)));
    expect(broken).toEqual([]);
  });

  it.each(DOCS)('%s: every tokenize-wiki command and flag exists', (doc) => {
    const program = buildProgram();
    const text = readFileSync(path.join(repoRoot, doc), 'utf8');
    const problems = invocations(text).flatMap((inv) =>
      problemsOf(inv, program).map((p) => `${p} (in "tokenize-wiki ${inv}")`),
    );
    expect(problems).toEqual([]);
  });

  it('the checker notices a wrong command, subcommand and flag', () => {
    const program = buildProgram();
    expect(problemsOf('statuss --run x', program)).toEqual(['unknown command "statuss"']);
    expect(problemsOf('lifecycle show --output-prefix s3://b/p', program)).toEqual([
      'lifecycle: unknown subcommand "show"',
    ]);
    expect(problemsOf('requeue --run x --task a', program)).toEqual(['requeue: no flag --task']);
    expect(problemsOf('lifecycle apply --output-prefix s3://b/p --expire-state-days 7', program)).toEqual([]);
  });

  it('the runbook index links every runbook in the folder', () => {
    const index = readFileSync(path.join(repoRoot, 'docs/runbooks/README.md'), 'utf8');
    const missing = readdirSync(path.join(repoRoot, 'docs/runbooks')).filter(
      (f) => f.endsWith('.md') && f !== 'README.md' && !index.includes(`](${f})`),
    );
    expect(missing).toEqual([]);
  });
});
