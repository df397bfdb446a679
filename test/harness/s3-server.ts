import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  ListBucketsCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { ensureGoBuild, goBuildStep, seaweedBuild, seaweedRoot } from '../../scripts/lib/bundle/go-builds.js';
import { ZxHost } from '../../scripts/lib/host.js';
import type { Install } from './announce.js';
import { cacheRoot, harnessVersions } from './paths.js';
import { GiveUp, freePorts, isAlive, killOnExit, startWithRetry, stopGroup, waitFor, withContext } from './proc.js';

/** How tests reach the S3 server: static credentials, path-style addressing, loopback only. */
export interface S3Connection {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
}

export interface S3Server {
  connection: S3Connection;
  /** Process-group id of the server (it leads its own group); a new one after `resume`. */
  readonly pid: number;
  dataDir: string;
  stop(): Promise<void>;
  /** An outage: the server process stops (as a deleted pod would), its data stays. */
  halt(): Promise<void>;
  /** The end of the outage: the server starts again on the same ports with the same data. */
  resume(): Promise<void>;
}

const CREDENTIALS = { accessKeyId: 'tokenize-wiki-test', secretAccessKey: 'tokenize-wiki-test-secret' } as const;

/**
 * Path to a `weed` binary of the pinned SeaweedFS, built from the Go module source on first use; the air-gapped
 * bundle copies the same binary into its object-store image.
 */
export async function ensureWeed(
  version: string = harnessVersions().seaweedfs,
  log: (line: string) => void = () => {},
): Promise<string> {
  const root = seaweedRoot(cacheRoot(), version);
  await ensureGoBuild(new ZxHost(), seaweedBuild(version), root, { lockTimeoutMs: 45 * 60_000, log });
  return join(root, 'weed');
}

/** The S3 server's build as an announced one-time install (see announce.ts). */
export function weedInstall(version: string = harnessVersions().seaweedfs): Install {
  const root = seaweedRoot(cacheRoot(), version);
  return {
    name: 'SeaweedFS (the S3 server of the tests)',
    where: root,
    estimate: '5-10 min',
    cached: () => goBuildStep(seaweedBuild(version), root).check(new ZxHost()),
    ensure: (log) => ensureWeed(version, log),
  };
}

/**
 * Starts `weed server` (master, volume, filer and S3 gateway in one process) on free loopback ports with a
 * throw-away data folder, and waits until a bucket can be created and written.
 */
export async function startS3Server(): Promise<S3Server> {
  const weed = await ensureWeed();
  return startWithRetry(3, () => startWeed(weed));
}

interface WeedPlace {
  ports: number[];
  dataDir: string;
}

async function startWeed(weed: string): Promise<S3Server> {
  // Every listener gets an explicit port: the defaults (and port+10000 for gRPC) collide between parallel servers.
  const place: WeedPlace = { ports: await freePorts(8), dataDir: mkdtempSync('/tmp/tw-s3-') };
  const s3Port = place.ports[6] as number;
  const connection: S3Connection = { endpoint: `http://127.0.0.1:${s3Port}`, region: 'us-east-1', ...CREDENTIALS };
  let pid = spawnWeed(weed, place);
  let forget = killOnExit(pid, place.dataDir);
  const server: S3Server = {
    connection,
    get pid() {
      return pid;
    },
    dataDir: place.dataDir,
    async stop() {
      await stopGroup(pid, 1000); // the data is thrown away, so a slow graceful shutdown (15 s+) buys nothing
      forget();
      rmSync(place.dataDir, { recursive: true, force: true });
    },
    async halt() {
      // The grace a deleted pod gets: the data written so far must survive the outage.
      await stopGroup(pid, 15_000);
    },
    async resume() {
      forget();
      pid = spawnWeed(weed, place);
      forget = killOnExit(pid, place.dataDir);
      await waitUntilWritable(connection, pid, place.dataDir);
    },
  };
  try {
    await waitUntilWritable(connection, pid, place.dataDir);
  } catch (err) {
    await server.stop();
    throw err;
  }
  return server;
}

function spawnWeed(weed: string, { ports, dataDir }: WeedPlace): number {
  const [master, masterGrpc, volume, volumeGrpc, filer, filerGrpc, s3, s3Grpc] = ports;
  writeFileSync(
    join(dataDir, 's3.json'),
    JSON.stringify({
      identities: [
        {
          name: 'tokenize-wiki-test',
          credentials: [{ accessKey: CREDENTIALS.accessKeyId, secretKey: CREDENTIALS.secretAccessKey }],
          actions: ['Admin', 'Read', 'List', 'Tagging', 'Write'],
        },
      ],
    }),
  );
  // One volume per bucket instead of 7, and no start-up hold on allocation: tests make many small buckets.
  writeFileSync(join(dataDir, 'master.toml'), '[master.volume_growth]\ncopy_1 = 1\nallocation_deferral = "0s"\n');
  const log = openSync(join(dataDir, 'weed.log'), 'a');
  const child = spawn(
    weed,
    [
      `-logdir=${dataDir}`,
      `-config_dir=${dataDir}`,
      'server',
      '-ip=127.0.0.1',
      '-ip.bind=127.0.0.1',
      `-dir=${dataDir}`,
      '-volume.max=0',
      '-master.volumeSizeLimitMB=256',
      '-master.telemetry=false',
      '-volume.preStopSeconds=0',
      `-master.port=${master}`,
      `-master.port.grpc=${masterGrpc}`,
      `-volume.port=${volume}`,
      `-volume.port.grpc=${volumeGrpc}`,
      '-filer',
      `-filer.port=${filer}`,
      `-filer.port.grpc=${filerGrpc}`,
      '-s3',
      `-s3.port=${s3}`,
      `-s3.port.grpc=${s3Grpc}`,
      '-s3.port.iceberg=0',
      '-s3.port.lance=0',
      `-s3.config=${join(dataDir, 's3.json')}`,
    ],
    { cwd: dataDir, detached: true, stdio: ['ignore', log, log] },
  );
  closeSync(log);
  if (child.pid === undefined) throw new Error(`could not start ${weed}`);
  child.unref();
  return child.pid;
}

async function waitUntilWritable(connection: S3Connection, pid: number, dataDir: string): Promise<void> {
  const client = s3Client(connection);
  const Bucket = 'harness-probe';
  const logTail = (): string => readFileSync(join(dataDir, 'weed.log'), 'utf8').slice(-3000);
  try {
    await waitFor('the S3 gateway to list buckets', 60_000, async () => {
      if (!isAlive(pid)) throw new GiveUp('weed server exited');
      await client.send(new ListBucketsCommand({}));
      return true;
    });
    // The first write allocates a volume; doing it here keeps that delay out of the first test.
    await waitFor('the S3 gateway to accept a write', 60_000, async () => {
      await client.send(new CreateBucketCommand({ Bucket })).catch((err: unknown) => {
        if ((err as { name?: string }).name !== 'BucketAlreadyOwnedByYou') throw err;
      });
      await client.send(new PutObjectCommand({ Bucket, Key: 'probe', Body: 'ok' }));
      return true;
    });
    await client.send(new DeleteObjectCommand({ Bucket, Key: 'probe' }));
    await client.send(new DeleteBucketCommand({ Bucket }));
  } catch (err) {
    throw withContext(err, `--- weed.log ---\n${logTail()}`);
  } finally {
    client.destroy();
  }
}

export type S3Env = {
  AWS_ENDPOINT_URL_S3: string;
  AWS_ACCESS_KEY_ID: string;
  AWS_SECRET_ACCESS_KEY: string;
  AWS_REGION: string;
};

/** The environment with which the program (SDK default chain) reaches a given S3 server. */
export function envFor(connection: S3Connection): S3Env {
  return {
    AWS_ENDPOINT_URL_S3: connection.endpoint,
    AWS_ACCESS_KEY_ID: connection.accessKeyId,
    AWS_SECRET_ACCESS_KEY: connection.secretAccessKey,
    AWS_REGION: connection.region,
  };
}

export function s3Client(connection: S3Connection): S3Client {
  return new S3Client({
    endpoint: connection.endpoint,
    region: connection.region,
    forcePathStyle: true,
    credentials: { accessKeyId: connection.accessKeyId, secretAccessKey: connection.secretAccessKey },
  });
}
