import { readFileSync } from 'node:fs';
import type { TestProject } from 'vitest/node';
// Only modules that do not import 'vitest' itself: global setup runs outside the test workers.
import { kubeInstall } from '../kube/harness.js';
import { announce, type Install } from './announce.js';
import { megatronVenvInstall } from './megatron.js';
import { rayVenvInstall, startRayHead, type RayConnection, type RayHead } from './ray.js';
import { envFor, startS3Server, weedInstall, type S3Connection } from './s3-server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    s3: S3Connection;
    /** null when no selected test file uses Ray (see `needsRay`). */
    ray: RayConnection | null;
  }
}

/** How a test file says it needs the Ray head; the harness scans the selected files for it. */
const USES_RAY = /\brayConnection\(|\binject\(\s*['"]ray['"]\s*\)/;
/**
 * A test file that reads with Megatron's reader: its venv (gigabytes of torch wheels on a fresh machine) is built here,
 * where no hook timeout applies, rather than in the file's beforeAll.
 */
const USES_MEGATRON = /\bensureMegatronVenv\(/;
/** A test file that starts a Ray head of its own: no shared head for it, but the venv is made here. */
const STARTS_RAY = /\bstartRayHead\(/;
/** A test file that starts kube-apiserver and etcd: built here, where the build's progress reaches the terminal. */
const USES_KUBE = /\bstartKube\(/;

/** Whether any selected test file matches; without the CLI's file filters (not public API) every test file counts. */
async function selectedFilesUse(project: TestProject, pattern: RegExp): Promise<boolean> {
  const filters = (project.vitest as unknown as { filenamePattern?: string[] }).filenamePattern;
  const { testFiles } = await project.globTestFiles(filters);
  return testFiles.some((file) => pattern.test(readFileSync(file, 'utf8')));
}

/**
 * Starting a Ray head costs tens of seconds of CPU on a 2-core machine, so it only starts when a selected test file
 * uses it. TW_TEST_RAY=1 / TW_TEST_RAY=0 force it on / off.
 */
async function needsRay(project: TestProject): Promise<boolean> {
  if (process.env.TW_TEST_RAY === '1') return true;
  if (process.env.TW_TEST_RAY === '0') return false;
  return selectedFilesUse(project, USES_RAY);
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const withRay = await needsRay(project);
  const seconds = (since: number): string => `${((Date.now() - since) / 1000).toFixed(1)} s`;
  let t = Date.now();
  // Installs first and in parallel (Go builds and pip installs on a fresh machine, announced), then the servers.
  const installs: Install[] = [weedInstall()];
  if (withRay || (await selectedFilesUse(project, STARTS_RAY))) installs.push(rayVenvInstall());
  if (await selectedFilesUse(project, USES_MEGATRON)) installs.push(megatronVenvInstall());
  if (await selectedFilesUse(project, USES_KUBE)) installs.push(await kubeInstall());
  await Promise.all(installs.map((install) => announce(install)));
  const timings = [`installs ${seconds(t)}`];
  t = Date.now();
  const s3 = await startS3Server();
  timings.push(`S3 at ${s3.connection.endpoint} ${seconds(t)}`);
  let ray: RayHead | undefined;
  try {
    t = Date.now();
    ray = withRay ? await startRayHead({ env: envFor(s3.connection) }) : undefined;
    if (ray) timings.push(`Ray at ${ray.connection.dashboardUrl} ${seconds(t)}`);
  } catch (err) {
    await s3.stop();
    throw err;
  }
  project.provide('s3', s3.connection);
  project.provide('ray', ray?.connection ?? null);
  console.log(`[harness] ready: ${timings.join(', ')}${withRay ? '' : ' (no Ray: no selected test file uses it)'}`);

  // Ctrl-C and crashes are handled by the process hooks in proc.ts (killOnExit); this is the orderly path.
  return async () => {
    await Promise.allSettled([ray?.stop(), s3.stop()]);
  };
}
