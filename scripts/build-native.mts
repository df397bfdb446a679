#!/usr/bin/env -S npx tsx
// Builds the native tokenizer (src/tokenize/native) into dist/native/, where src/tokenize/native-addon.ts loads it.
// Run by `npm install` (prepare). It never fails the install: without cargo, or when the build fails, it says why,
// leaves the reason in dist/native/build-failure.txt, and the program uses the JS tokenizer (same ids, slower).
// Cargo's build folder is kept in the project's cache (TW_CACHE_DIR); cargo locks it against parallel builds.
//
//   npx tsx scripts/build-native.mts
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NATIVE_ADDON, NATIVE_BUILD_FAILURE } from '../src/tokenize/native-addon.js';
import { cacheRoot } from './lib/bundle/go-builds.js';

const CRATE = 'tokenize_wiki_native';

/** `cargo` from CARGO, PATH, or rustup's default place (not on PATH in a non-login shell). */
function findCargo(): string | undefined {
  const candidates = [process.env.CARGO, 'cargo', join(homedir(), '.cargo', 'bin', 'cargo')].filter(
    (c): c is string => !!c,
  );
  return candidates.find((cargo) => spawnSync(cargo, ['--version'], { stdio: 'ignore' }).status === 0);
}

/** The file cargo writes for a cdylib on this platform. */
function libraryName(): string {
  if (process.platform === 'win32') return `${CRATE}.dll`;
  return process.platform === 'darwin' ? `lib${CRATE}.dylib` : `lib${CRATE}.so`;
}

function build(): string | undefined {
  const cargo = findCargo();
  if (!cargo) return 'cargo not found';
  const targetDir = join(cacheRoot(), 'native-target');
  const manifest = fileURLToPath(new URL('../src/tokenize/native/Cargo.toml', import.meta.url));
  const run = spawnSync(cargo, ['build', '--release', '--locked', '--manifest-path', manifest], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, CARGO_TARGET_DIR: targetDir },
  });
  if (run.status !== 0)
    return `cargo build failed${run.error ? `: ${run.error.message}` : ` with exit code ${run.status}`}`;
  const built = join(targetDir, 'release', libraryName());
  if (!existsSync(built)) return `cargo build left no ${built}`;
  // Copy then rename: a running program never loads a half-written addon.
  const partial = `${NATIVE_ADDON}.partial`;
  copyFileSync(built, partial);
  renameSync(partial, NATIVE_ADDON);
  return undefined;
}

mkdirSync(dirname(NATIVE_ADDON), { recursive: true });
rmSync(NATIVE_ADDON, { force: true });
rmSync(NATIVE_BUILD_FAILURE, { force: true });
let failure: string | undefined;
try {
  failure = build();
} catch (error) {
  failure = `build-native failed: ${(error as Error).message}`;
}
if (failure) {
  writeFileSync(NATIVE_BUILD_FAILURE, `${failure}\n`);
  console.warn(`build-native: ${failure}; tokenize-wiki will use the JS tokenizer (same ids, slower)`);
} else {
  console.log(`build-native: ${NATIVE_ADDON}`);
}
