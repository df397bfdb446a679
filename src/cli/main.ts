import { Command, CommanderError } from 'commander';
import { exitCodeOf, messageOf } from '../errors/index.js';
import { logWriter, programVersion } from '../observability/index.js';
import { registerBuckets } from './buckets.js';
import { registerExport } from './export.js';
import { registerLifecycle } from './lifecycle.js';
import { registerManifest } from './manifest.js';
import { addLogFlags, logSettingsOf } from './options.js';
import { registerRun } from './run.js';
import { registerRequeue } from './requeue.js';
import { registerRunTasks } from './run-tasks.js';
import { registerStage } from './stage.js';
import { registerStatus } from './status.js';
import { registerSubmit } from './submit.js';
import { registerSynth } from './synth.js';
import { registerVerify } from './verify.js';

export function buildProgram(): Command {
  const program = new Command('tokenize-wiki')
    .description('Tokenize CirrusSearch dumps of Wikipedia into token-id shards (see README.md)')
    .version(programVersion)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .hook('preAction', (_program, command) => logWriter.configure(logSettingsOf(command)));
  for (const register of [
    registerSynth,
    registerStage,
    registerManifest,
    registerRunTasks,
    registerRun,
    registerVerify,
    registerExport,
    registerBuckets,
    registerLifecycle,
    registerSubmit,
    registerStatus,
    registerRequeue,
  ])
    register(program);
  for (const command of program.commands) command.exitOverride();
  for (const command of actionCommands(program)) addLogFlags(command);
  return program;
}

/** The commands that act (`buckets ensure`, not `buckets`). */
function actionCommands(command: Command): Command[] {
  return command.commands.length === 0 ? [command] : command.commands.flatMap(actionCommands);
}

/** Run the CLI; returns the exit code (0 ok, 1 task/run failure, 2 bad usage or input). */
export async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help / --version exit 0; commander already printed its one-line message for usage errors.
      return error.exitCode === 0 ? 0 : 2;
    }
    process.stderr.write(`tokenize-wiki: ${messageOf(error)}\n`);
    return exitCodeOf(error);
  }
}
