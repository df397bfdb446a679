import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { CoordinationV1Api, KubeConfig, V1Lease } from '@kubernetes/client-node';
import { z } from 'zod';
import { parseJson, parseWith } from '../errors/index.js';
import { STATE_FILES } from '../output/index.js';
import { joinUri, readText, storeFor } from '../storage/index.js';
import { httpStatusOf, kubeApi } from './kube-client.js';

/** The outcome of trying to take a lease: held by us, or by whom and until when. */
export interface LeaseStatus {
  held: boolean;
  holder?: string;
  expires_at?: string;
}

/** Exactly one submitter acts on a run at a time: it acts only while it holds the run's lease. */
export interface Lease {
  readonly holder: string;
  acquire(): Promise<LeaseStatus>;
  /** Extend a lease we hold; false if it was lost (expired and taken by another submitter). */
  renew(): Promise<boolean>;
  release(): Promise<void>;
}

/** A name that differs between processes and says where the submitter runs (pod name in Kubernetes). */
export function leaseHolder(): string {
  return `${process.env.POD_NAME ?? hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

const LeaseRecord = z.object({
  holder: z.string(),
  acquired_at: z.string(),
  expires_at: z.string(),
  released: z.boolean().optional(),
});
type LeaseRecord = z.infer<typeof LeaseRecord>;

const GEN_DIGITS = 12;

/**
 * A lease on object storage that needs nothing but create-if-absent (S3 `If-None-Match: *`, link(2) on files):
 * `<prefix><generation>.json` files, the highest generation being the current lease. A submitter takes or renews it
 * by creating generation + 1, allowed only when the current one has expired, was released, or is its own; of two
 * submitters racing for the same generation exactly one create succeeds. Old generations are removed.
 */
export class StoreLease implements Lease {
  private generation: number | undefined;

  constructor(
    private readonly prefix: string,
    readonly holder: string,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  async acquire(): Promise<LeaseStatus> {
    const current = await this.current();
    if (current && !this.isMine(current) && !this.isFree(current.record)) {
      return { held: false, holder: current.record.holder, expires_at: current.record.expires_at };
    }
    return this.take((current?.generation ?? 0) + 1);
  }

  async renew(): Promise<boolean> {
    const current = await this.current();
    if (!current || !this.isMine(current)) {
      this.generation = undefined;
      return false;
    }
    return (await this.take(current.generation + 1)).held;
  }

  async release(): Promise<void> {
    if (this.generation === undefined) return;
    const current = await this.current();
    if (current && this.isMine(current)) {
      const at = new Date(this.now()).toISOString();
      await storeFor(this.prefix).writeIfAbsent(
        this.uri(current.generation + 1),
        JSON.stringify({ holder: this.holder, acquired_at: at, expires_at: at, released: true }),
      );
    }
    this.generation = undefined;
  }

  private isMine(current: { generation: number; record: LeaseRecord }): boolean {
    return current.generation === this.generation && current.record.holder === this.holder;
  }

  private isFree(record: LeaseRecord): boolean {
    return record.released === true || Date.parse(record.expires_at) <= this.now();
  }

  private async take(generation: number): Promise<LeaseStatus> {
    const now = this.now();
    const record: LeaseRecord = {
      holder: this.holder,
      acquired_at: new Date(now).toISOString(),
      expires_at: new Date(now + this.ttlMs).toISOString(),
    };
    if (!(await storeFor(this.prefix).writeIfAbsent(this.uri(generation), JSON.stringify(record)))) {
      const winner = await this.current();
      return { held: false, ...(winner ? { holder: winner.record.holder, expires_at: winner.record.expires_at } : {}) };
    }
    this.generation = generation;
    await this.prune(generation);
    return { held: true, holder: this.holder, expires_at: record.expires_at };
  }

  /** Keep the current and the previous generation (to see who held it last); the rest only cost listing time. */
  private async prune(generation: number): Promise<void> {
    const store = storeFor(this.prefix);
    for (const gen of await this.generations()) {
      if (gen < generation - 1) await store.delete(this.uri(gen)).catch(() => undefined);
    }
  }

  private async generations(): Promise<number[]> {
    const found: number[] = [];
    for await (const info of storeFor(this.prefix).list(this.prefix)) {
      const match = /\/(\d+)\.json$/.exec(info.uri);
      if (match) found.push(Number(match[1]));
    }
    return found.sort((a, b) => a - b);
  }

  private async current(): Promise<{ generation: number; record: LeaseRecord } | undefined> {
    const gens = await this.generations();
    for (let i = gens.length - 1; i >= 0; i--) {
      const uri = this.uri(gens[i] as number);
      // Pruned between listing and reading: look at the next lower generation's successor instead.
      const text = await readText(uri).catch(() => undefined);
      if (text !== undefined)
        return { generation: gens[i] as number, record: parseWith(LeaseRecord, parseJson(text, uri), uri) };
    }
    return undefined;
  }

  private uri(generation: number): string {
    return joinUri(this.prefix, `${String(generation).padStart(GEN_DIGITS, '0')}.json`);
  }
}

/** The lease of a run on object storage: `<output_prefix>/state/lease/`. */
export function runStoreLease(outputPrefix: string, holder: string, ttlMs: number): StoreLease {
  return new StoreLease(joinUri(outputPrefix, STATE_FILES.lease), holder, ttlMs);
}

/** What to do with a coordination.k8s.io Lease, decided without I/O so it can be tested on its own. */
export type KubeLeaseStep =
  | { op: 'create'; body: V1Lease }
  | { op: 'replace'; body: V1Lease }
  | { op: 'wait'; holder: string; expires_at: string };

/**
 * Lease times are MicroTime: the API server accepts exactly six fractional digits, but the client library would send
 * a Date as toISOString() (three) and get a 400. It passes strings through unchanged, hence the cast.
 */
export function microTime(ms: number): Date {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z') as unknown as Date;
}

export function kubeLeaseStep(
  existing: V1Lease | undefined,
  name: string,
  holder: string,
  ttlSeconds: number,
  now: number,
): KubeLeaseStep {
  const spec = {
    holderIdentity: holder,
    leaseDurationSeconds: ttlSeconds,
    renewTime: microTime(now),
    acquireTime: microTime(now),
  };
  if (!existing) return { op: 'create', body: { metadata: { name }, spec } };
  const current = existing.spec ?? {};
  const renewed = current.renewTime ?? current.acquireTime;
  const expires = (renewed ? new Date(renewed).getTime() : 0) + (current.leaseDurationSeconds ?? 0) * 1000;
  const mine = current.holderIdentity === holder;
  if (!mine && current.holderIdentity && expires > now) {
    return { op: 'wait', holder: current.holderIdentity, expires_at: new Date(expires).toISOString() };
  }
  // The read resourceVersion makes the API server reject this replace if another submitter replaced it first.
  return {
    op: 'replace',
    body: {
      metadata: { ...existing.metadata, name },
      spec: {
        ...spec,
        acquireTime: mine && current.acquireTime ? current.acquireTime : spec.acquireTime,
        leaseTransitions: (current.leaseTransitions ?? 0) + (mine ? 0 : 1),
      },
    },
  };
}

/** A coordination.k8s.io Lease (kuberay backend): optimistic concurrency through resourceVersion conflicts (409). */
export class KubeLease implements Lease {
  private readonly api: Promise<CoordinationV1Api>;
  private held = false;

  constructor(
    private readonly namespace: string,
    private readonly name: string,
    readonly holder: string,
    private readonly ttlSeconds: number,
    kubeConfig?: KubeConfig,
  ) {
    this.api = kubeApi((kube, config) => config.makeApiClient(kube.CoordinationV1Api), kubeConfig);
  }

  async acquire(): Promise<LeaseStatus> {
    let existing: V1Lease | undefined;
    try {
      existing = await (await this.api).readNamespacedLease({ name: this.name, namespace: this.namespace });
    } catch (error) {
      if (!(httpStatusOf(error) === 404)) throw error;
    }
    const step = kubeLeaseStep(existing, this.name, this.holder, this.ttlSeconds, Date.now());
    if (step.op === 'wait') return { held: false, holder: step.holder, expires_at: step.expires_at };
    try {
      if (step.op === 'create')
        await (await this.api).createNamespacedLease({ namespace: this.namespace, body: step.body });
      else
        await (await this.api).replaceNamespacedLease({ name: this.name, namespace: this.namespace, body: step.body });
    } catch (error) {
      if (httpStatusOf(error) === 409) return { held: false };
      throw error;
    }
    this.held = true;
    return { held: true, holder: this.holder };
  }

  async renew(): Promise<boolean> {
    if (!this.held) return false;
    this.held = (await this.acquire()).held;
    return this.held;
  }

  async release(): Promise<void> {
    if (!this.held) return;
    const existing = await (await this.api).readNamespacedLease({ name: this.name, namespace: this.namespace });
    if (existing.spec?.holderIdentity === this.holder) {
      await (
        await this.api
      )
        // As client-go's leader election does: an empty holder is free at once (a duration of 0 is rejected).
        .replaceNamespacedLease({
          name: this.name,
          namespace: this.namespace,
          body: { ...existing, spec: { ...existing.spec, holderIdentity: '', leaseDurationSeconds: 1 } },
        })
        .catch(() => undefined);
    }
    this.held = false;
  }
}

/** Several leases held together (object storage and, with kuberay, a Kubernetes Lease), taken in order. */
export class AllLeases implements Lease {
  constructor(private readonly leases: readonly Lease[]) {}

  get holder(): string {
    return this.leases[0]?.holder ?? '';
  }

  async acquire(): Promise<LeaseStatus> {
    const taken: Lease[] = [];
    for (const lease of this.leases) {
      const status = await lease.acquire();
      if (!status.held) {
        for (const l of taken.reverse()) await l.release();
        return status;
      }
      taken.push(lease);
    }
    return { held: true, holder: this.holder };
  }

  async renew(): Promise<boolean> {
    for (const lease of this.leases) if (!(await lease.renew())) return false;
    return true;
  }

  async release(): Promise<void> {
    for (const lease of [...this.leases].reverse()) await lease.release();
  }
}

/**
 * The leases a submitter of this run must hold: the one on object storage always (it works with every backend and
 * lives beside the state it guards), and with the kuberay backend also a Kubernetes Lease in the run's namespace.
 */
export function leaseFor(
  run: { run_id: string; output_prefix: string; backend: { kind: string; namespace?: string } },
  holder: string,
  ttlMs: number,
): Lease {
  const store = runStoreLease(run.output_prefix, holder, ttlMs);
  if (run.backend.kind !== 'kuberay' || !run.backend.namespace) return store;
  return new AllLeases([
    new KubeLease(
      run.backend.namespace,
      `tokenize-wiki-submit-${run.run_id}`.slice(0, 253),
      holder,
      Math.ceil(ttlMs / 1000),
    ),
    store,
  ]);
}
