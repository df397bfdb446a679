import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { cacheRoot, harnessVersions, repoRoot } from './paths.js';
import {
  GiveUp,
  freePorts,
  isAlive,
  killOnExit,
  run,
  startWithRetry,
  stopGroup,
  waitFor,
  withContext,
} from './proc.js';
import type { Install } from './announce.js';
import { ensureVenv, tiktokenCacheFor, venvInstall, type VenvSpec } from './venv.js';

/** How tests reach a Ray head: the Jobs REST API lives under `dashboardUrl` (`/api/jobs/`). */
export interface RayConnection {
  dashboardUrl: string;
  /** `127.0.0.1:<port>` of the GCS, for `ray.init(address=...)` from Python. */
  gcsAddress: string;
  venvDir: string;
}

export interface RayHeadOptions {
  /** Extra environment for the head and so for every job's entrypoint (e.g. the S3 env). */
  env?: Record<string, string>;
  numCpus?: number;
}

export interface RayHead {
  readonly connection: RayConnection;
  /** Stops every process of this head (and only this head) and removes its temp dir. */
  stop(): Promise<void>;
  /** SIGKILLs the head (a crash) and starts it again on the same ports; the old head's jobs are gone (no GCS persistence). */
  restart(): Promise<void>;
  waitUntilReady(timeoutMs?: number): Promise<void>;
}

/** A venv with `ray[default]==<versions.yaml ray>` and `tiktoken`, under the cache, reused while its stamp matches. */
function rayVenv(version: string = harnessVersions().ray): VenvSpec {
  const packages = ['ray[default]', 'tiktoken'];
  return {
    dir: join(cacheRoot(), `ray-${version}`),
    stamp: JSON.stringify({ ray: version, packages }),
    requirements: [`ray[default]==${version}`, 'tiktoken'],
  };
}

export async function ensureRayVenv(version?: string): Promise<string> {
  return ensureVenv(rayVenv(version));
}

export const rayVenvInstall = (): Install => venvInstall(`Ray ${harnessVersions().ray} venv`, '3-6 min', rayVenv());

export { tiktokenCacheFor };

/**
 * Starts a Ray head on free loopback ports (`ray start --head --block` as the leader of its own process group, so
 * stopping it touches no other Ray on the machine) and waits until the Jobs API answers.
 */
export async function startRayHead(options: RayHeadOptions = {}): Promise<RayHead> {
  const venvDir = await ensureRayVenv();
  const tiktokenDir = tiktokenCacheFor(venvDir);
  return startWithRetry(2, () => startHead(venvDir, tiktokenDir, options));
}

async function startHead(venvDir: string, tiktokenDir: string, options: RayHeadOptions): Promise<RayHead> {
  // Every listener gets its own port so that several heads (parallel vitest processes) can coexist.
  const [
    gcs,
    dashboard,
    nodeManager,
    objectManager,
    client,
    agentHttp,
    agentGrpc,
    metrics,
    runtimeEnvAgent,
    dashboardMetrics,
  ] = await freePorts(10);
  // Ray's Unix socket paths must stay short, hence a short folder directly under /tmp.
  const tempDir = mkdtempSync('/tmp/twray-');
  // The launcher is bin/tokenize-wiki.js; entrypoints call it by its command name, as on the cluster image.
  const shims = join(tempDir, 'bin');
  mkdirSync(shims);
  symlinkSync(join(repoRoot, 'bin', 'tokenize-wiki.js'), join(shims, 'tokenize-wiki'));
  const args = [
    'start',
    '--head',
    '--block',
    '--disable-usage-stats',
    `--temp-dir=${tempDir}`,
    '--node-ip-address=127.0.0.1',
    '--dashboard-host=127.0.0.1',
    `--dashboard-port=${dashboard}`,
    `--port=${gcs}`,
    `--num-cpus=${options.numCpus ?? 2}`,
    `--node-manager-port=${nodeManager}`,
    `--object-manager-port=${objectManager}`,
    `--ray-client-server-port=${client}`,
    `--dashboard-agent-listen-port=${agentHttp}`,
    `--dashboard-agent-grpc-port=${agentGrpc}`,
    `--metrics-export-port=${metrics}`,
    `--runtime-env-agent-port=${runtimeEnvAgent}`,
    // 0/0 lets the OS pick worker ports instead of a fixed range shared by every head.
    '--min-worker-port=0',
    '--max-worker-port=0',
    '--object-store-memory=500000000',
  ];
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...options.env,
    // Job entrypoints run `tokenize-wiki …` (repo bin/, needs node) and `python …` (the venv).
    PATH: [join(venvDir, 'bin'), shims, dirname(process.execPath), process.env.PATH ?? ''].join(delimiter),
    TIKTOKEN_CACHE_DIR: tiktokenDir,
    RAY_USAGE_STATS_ENABLED: '0',
    DASHBOARD_METRIC_PORT: String(dashboardMetrics), // fixed 44227 by default
    // The dashboard gives its modules 30 s to start, which a 2-core machine under test load can miss (it then dies).
    RAY_DASHBOARD_SUBPROCESS_MODULE_WAIT_READY_TIMEOUT: '300',
    // Without this Ray swaps 127.0.0.1 for the host's outward address; tests stay on loopback.
    RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER: '0',
  };
  const dashboardUrl = `http://127.0.0.1:${dashboard}`;
  let pgid = 0;
  let forget: () => void = () => undefined;

  const launch = (): void => {
    const log = openSync(join(tempDir, 'ray-start.log'), 'a');
    const child = spawn(join(venvDir, 'bin', 'ray'), args, { env, detached: true, stdio: ['ignore', log, log] });
    closeSync(log);
    if (child.pid === undefined) throw new Error(`could not start ${join(venvDir, 'bin', 'ray')}`);
    child.unref();
    pgid = child.pid;
    forget = killOnExit(pgid, tempDir);
  };
  const kill = async (graceMs: number): Promise<void> => {
    // Ray shuts its children down on SIGTERM (some seconds on a busy machine); SIGKILL catches stragglers.
    await stopGroup(pgid, graceMs);
    forget();
  };
  const waitUntilReady = async (timeoutMs = 180_000): Promise<void> => {
    const logTail = (): string =>
      ['ray-start.log', 'session_latest/logs/dashboard.log']
        .map((file) => {
          try {
            return `--- ${file} ---\n${readFileSync(join(tempDir, file), 'utf8').slice(-2000)}`;
          } catch {
            return `--- ${file}: none ---`;
          }
        })
        .join('\n');
    try {
      await waitFor(`the Ray head at ${dashboardUrl}`, timeoutMs, async () => {
        if (!isAlive(pgid)) throw new GiveUp('ray start exited');
        if (dashboardFailed(tempDir)) throw new GiveUp('the Ray dashboard failed to start');
        for (const path of ['/api/version', '/api/jobs/']) {
          const { status } = await rayRequest(dashboardUrl, 'GET', path);
          if (status !== 200) throw new Error(`GET ${path} answered ${status}`);
        }
        return true;
      });
    } catch (err) {
      throw withContext(err, logTail());
    }
  };

  launch();
  const head: RayHead = {
    connection: { dashboardUrl, gcsAddress: `127.0.0.1:${gcs}`, venvDir },
    async stop() {
      await kill(5000);
      rmSync(tempDir, { recursive: true, force: true });
    },
    async restart() {
      await kill(0); // a crash, as a fault test wants it
      launch();
      await waitUntilReady();
    },
    waitUntilReady,
  };
  try {
    await waitUntilReady();
  } catch (err) {
    await head.stop();
    throw err;
  }
  return head;
}

function dashboardFailed(tempDir: string): boolean {
  try {
    return readFileSync(join(tempDir, 'session_latest', 'logs', 'dashboard.log'), 'utf8').includes(
      'failed with the following error',
    );
  } catch {
    return false;
  }
}

/** Runs a Python snippet with the venv's interpreter (used by benchmarks and checks). */
export async function venvPython(venvDir: string, code: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return run(join(venvDir, 'bin', 'python'), ['-c', code], { env });
}

/**
 * A JSON request to the Ray dashboard with node:http. Node's global fetch always sends `Sec-Fetch-Mode`, which Ray
 * (2.52) takes for a browser and answers POST/PUT with 405 "Method Not Allowed for browser traffic".
 */
export async function rayRequest(
  dashboardUrl: string,
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  body?: unknown,
): Promise<{ status: number; json: unknown }> {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, dashboardUrl), {
      method,
      headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {},
    });
    req.once('error', reject);
    req.once('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.once('error', reject);
      res.once('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown = text;
        try {
          json = JSON.parse(text);
        } catch {
          // Ray answers some errors in plain text; hand it back as a string.
        }
        resolve({ status: res.statusCode ?? 0, json });
      });
    });
    req.end(payload);
  });
}
