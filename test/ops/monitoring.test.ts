// The monitoring app (infrastructure/monitoring): alert rules and the Grafana dashboard parse as PromQL, and every
// series they select exists: tokenize_wiki_* in a real scrape of the submitter's metrics registry (with the labels
// and label values the registry really produces), ray_* in what Ray exports, kube_* in kube-state-metrics.
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { describe, expect, it } from 'vitest';
import { METRIC_NAMES, SubmitterMetrics } from '../../src/runs/metrics.js';
import type { RunProgress } from '../../src/runs/progress.js';
import { loadPins, render, repoRoot } from '../gitops/gitops.js';
import { expandGrafanaVariables, matcherAccepts, parsePromql, type Selector } from './promql.js';

const MONITORING = path.join(repoRoot, 'infrastructure', 'monitoring');

/**
 * Ray's system metrics, read from the /metrics of a Ray 2.52.0 head (the harness's, during test/ops/load-test.ts)
 * and from Ray's system-metrics reference. Labels as Ray exports them; the PodMonitor adds namespace and pod.
 */
const RAY_VERSION_CHECKED = '2.52.0';
const RAY_METRICS: Record<string, string[]> = {
  ray_node_cpu_utilization: ['NodeAddress', 'SessionName'],
  ray_node_cpu_count: ['NodeAddress', 'SessionName'],
  ray_node_mem_used: ['NodeAddress', 'SessionName'],
  ray_node_mem_total: ['NodeAddress', 'SessionName'],
  ray_node_mem_available: ['NodeAddress', 'SessionName'],
  ray_object_store_memory: ['Location', 'ObjectState', 'NodeAddress', 'SessionName'],
  ray_object_store_available_memory: ['NodeAddress', 'SessionName'],
  ray_object_store_used_memory: ['NodeAddress', 'SessionName'],
  ray_resources: ['Name', 'State', 'NodeAddress', 'SessionName'],
  ray_tasks: ['Name', 'State', 'IsRetry', 'JobId'],
};
const RAY_LABEL_VALUES: Record<string, string[]> = {
  Name: ['CPU', 'memory', 'object_store_memory'],
  State: ['USED', 'AVAILABLE'],
  Location: ['MMAP_SHM', 'MMAP_DISK', 'SPILLED', 'WORKER_HEAP'],
};
/** kube-state-metrics series (v2) and Prometheus's own `up`, with their labels. */
const KUBE_METRICS: Record<string, string[]> = {
  up: ['job', 'instance', 'namespace', 'pod', 'service', 'container'],
  kube_pod_container_status_restarts_total: ['namespace', 'pod', 'container'],
  kube_pod_container_status_last_terminated_reason: ['namespace', 'pod', 'container', 'reason'],
  kube_job_status_failed: ['namespace', 'job_name', 'reason'],
  kube_cronjob_status_last_successful_time: ['namespace', 'cronjob'],
  kube_cronjob_spec_suspend: ['namespace', 'cronjob'],
};
/** Labels Prometheus adds to every scraped tokenize_wiki_* and ray_* series (target labels of the monitors). */
const TARGET_LABELS = ['namespace', 'pod', 'service', 'job', 'instance', 'container', 'endpoint', 'ray_node_type'];

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels: { severity: 'warning' | 'critical' };
  annotations: { summary: string; runbook: string };
}

const RuleSchema = z.strictObject({
  alert: z.string().regex(/^[A-Z][A-Za-z0-9]+$/),
  expr: z.string().min(1),
  for: z.string().regex(/^\d+[smh]$/).optional(),
  labels: z.strictObject({ severity: z.enum(['warning', 'critical']) }),
  annotations: z.strictObject({ summary: z.string().min(10), runbook: z.string() }),
});

function alertRules(): Rule[] {
  const doc = z
    .object({ kind: z.literal('PrometheusRule'), spec: z.object({ groups: z.array(z.object({ name: z.string(), rules: z.array(z.unknown()) })) }) })
    .parse(YAML.parse(readFileSync(path.join(MONITORING, 'alerts.yaml'), 'utf8')));
  return doc.spec.groups.flatMap((g) =>
    g.rules.map((r, i) => {
      const parsed = RuleSchema.safeParse(r);
      if (!parsed.success) throw new Error(`alerts.yaml: group ${g.name} rule ${i}: ${parsed.error.issues.map((x) => `${x.path.join('.')}: ${x.message}`).join('; ')}`);
      return parsed.data;
    }),
  );
}

interface Query {
  where: string;
  expr: string;
}

const Target = z.looseObject({ expr: z.string().optional(), refId: z.string() });
const Panel = z.looseObject({ id: z.number(), type: z.string(), title: z.string(), targets: z.array(Target).optional() });
const Dashboard = z.looseObject({
  uid: z.string(),
  title: z.string(),
  panels: z.array(Panel),
  templating: z.object({ list: z.array(z.looseObject({ name: z.string(), query: z.unknown().optional(), definition: z.string().optional() })) }),
});

function dashboard(): z.infer<typeof Dashboard> {
  return Dashboard.parse(JSON.parse(readFileSync(path.join(MONITORING, 'dashboards', 'tokenize-wiki.json'), 'utf8')));
}

function dashboardQueries(): Query[] {
  const d = dashboard();
  const out: Query[] = [];
  for (const p of d.panels) for (const t of p.targets ?? []) if (t.expr) out.push({ where: `panel "${p.title}" query ${t.refId}`, expr: expandGrafanaVariables(t.expr) });
  for (const v of d.templating.list) {
    // label_values(metric, label) is Grafana's, not PromQL: its first argument is a selector.
    const m = /^label_values\((.+),\s*(\w+)\)$/.exec(v.definition ?? '');
    if (m?.[1]) out.push({ where: `variable ${v.name}`, expr: m[1] });
  }
  return out;
}

/** A real scrape of the submitter's registry after one tick, so every labelled series exists. */
async function scrape(): Promise<Map<string, Map<string, Set<string>>>> {
  const metrics = new SubmitterMetrics({ processMetrics: false });
  const progress: RunProgress = {
    run_id: 'scrape-run',
    updated_at: new Date().toISOString(),
    complete: false,
    paused: false,
    tasks: { total: 10, done: 4, in_flight: 2, pending: 2, failed: 1, quarantined: 1 },
    docs: { total: 10_000, done: 4000 },
    tokens_done: 9_000_000,
    text_bytes_done: 36_000_000,
    failed_attempts: 3,
    throughput: { docs_per_second: 40, tokens_per_second: 90_000, window_seconds: 900 },
    eta_seconds: 150,
    jobs_in_flight: [{ id: 'scrape-run-b00003-a1', tasks: ['t5', 't6'], submitted_at: new Date().toISOString() }],
    failures: [],
    quarantined: [],
  };
  metrics.observeTick('scrape-run', 1.5, {
    acted: true,
    lease: { held: true, holder: 'submitter-0' },
    progress,
    submitted: [],
    stopped: [],
    deleted: [],
    events: [{ job: 'scrape-run-b00001-a1', outcome: 'failed', failed_tasks: ['t1'], duration_seconds: 42 }],
    quarantined: [],
  });
  metrics.observeTick('scrape-run', 0.5, undefined, new Error('S3 unreachable'));
  const series = new Map<string, Map<string, Set<string>>>();
  for (const line of (await metrics.registry.metrics()).split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? /.exec(line);
    if (!m?.[1]) continue;
    const labels = series.get(m[1]) ?? new Map<string, Set<string>>();
    for (const [, k, v] of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels.set(k as string, (labels.get(k as string) ?? new Set()).add(v as string));
    series.set(m[1], labels);
  }
  return series;
}

/** Problems with one selector: unknown metric, label the series never has, label value it never takes. */
function selectorProblems(s: Selector, tw: Map<string, Map<string, Set<string>>>): string[] {
  const problems: string[] = [];
  let labels: Map<string, string[]>;
  if (s.metric.startsWith('tokenize_wiki_')) {
    const found = tw.get(s.metric);
    if (!found) return [`${s.metric} is not exported by src/runs/metrics.ts`];
    labels = new Map([...found].map(([k, v]) => [k, [...v]]));
  } else if (s.metric.startsWith('ray_')) {
    const names = RAY_METRICS[s.metric];
    if (!names) return [`${s.metric} is not a Ray metric we know (add it to RAY_METRICS after checking Ray's /metrics)`];
    labels = new Map(names.map((n) => [n, RAY_LABEL_VALUES[n] ?? []]));
  } else {
    const names = KUBE_METRICS[s.metric];
    if (!names) return [`${s.metric} is neither ours, Ray's nor kube-state-metrics' (known: ${Object.keys(KUBE_METRICS).join(', ')})`];
    labels = new Map(names.map((n) => [n, []]));
  }
  for (const m of s.matchers) {
    if (TARGET_LABELS.includes(m.label) && !labels.has(m.label)) continue;
    const values = labels.get(m.label);
    if (values === undefined) problems.push(`${s.metric} has no label ${m.label}`);
    else if (values.length > 0 && !matcherAccepts(m, values)) problems.push(`${s.metric}{${m.label}${m.op}"${m.value}"} selects nothing (values: ${values.join(', ')})`);
  }
  return problems;
}

describe('monitoring: alert rules', () => {
  const rules = alertRules();

  it('every expression parses as PromQL', () => {
    const problems = rules.flatMap((r) => parsePromql(r.expr).errors.map((e) => `${r.alert}: ${e}`));
    expect(problems).toEqual([]);
  });

  it('every series an alert selects exists, with the labels and values it matches on', async () => {
    const tw = await scrape();
    const problems = rules.flatMap((r) => parsePromql(r.expr).selectors.flatMap((s) => selectorProblems(s, tw).map((p) => `${r.alert}: ${p}`)));
    expect(problems).toEqual([]);
  });

  it('alert names are unique and every runbook link names a file of the repo', () => {
    const names = rules.map((r) => r.alert);
    expect(new Set(names).size).toBe(names.length);
    for (const r of rules) expect(existsSync(path.join(repoRoot, r.annotations.runbook)), `${r.alert}: runbook ${r.annotations.runbook}`).toBe(true);
  });

  it('covers what a person must act on: stalls, failures, quarantine, reconcile, OOM kills and restarts', () => {
    const uses = (metric: string): string[] => rules.filter((r) => parsePromql(r.expr).selectors.some((s) => s.metric === metric)).map((r) => r.alert);
    expect(uses('tokenize_wiki_docs')).toContain('TokenizeWikiRunStalled');
    expect(uses('tokenize_wiki_failed_attempts')).toContain('TokenizeWikiFailureRatioHigh');
    expect(rules.find((r) => r.alert === 'TokenizeWikiTasksQuarantined')?.expr).toMatch(/state="quarantined"/);
    expect(uses('tokenize_wiki_last_successful_reconcile_timestamp_seconds')).toContain('TokenizeWikiReconcileNotSucceeding');
    expect(rules.find((r) => r.alert === 'RayContainerOOMKilled')?.expr).toMatch(/reason="OOMKilled"/);
    expect(uses('kube_pod_container_status_restarts_total')).toContain('RayPodRestarting');
  });

  it('the check itself catches an unknown metric, a wrong label value and a syntax error', async () => {
    const tw = await scrape();
    expect(selectorProblems(parsePromql('tokenize_wiki_tasks_total').selectors[0] as Selector, tw)).toEqual(['tokenize_wiki_tasks_total is not exported by src/runs/metrics.ts']);
    expect(selectorProblems(parsePromql('tokenize_wiki_tasks{state="running"}').selectors[0] as Selector, tw)[0]).toMatch(/selects nothing/);
    expect(selectorProblems(parsePromql('tokenize_wiki_docs{task_id="x"}').selectors[0] as Selector, tw)).toEqual(['tokenize_wiki_docs has no label task_id']);
    expect(parsePromql('sum(rate(tokenize_wiki_docs[5m])').errors).not.toEqual([]);
  });
});

describe('monitoring: the Grafana dashboard', () => {
  it('every query parses as PromQL and selects series that exist', async () => {
    const tw = await scrape();
    const queries = dashboardQueries();
    expect(queries.length).toBeGreaterThan(10);
    const problems = queries.flatMap((q) => {
      const parsed = parsePromql(q.expr);
      return [...parsed.errors, ...parsed.selectors.flatMap((s) => selectorProblems(s, tw))].map((p) => `${q.where}: ${p}`);
    });
    expect(problems).toEqual([]);
  });

  it('shows run progress, throughput, failures and Ray CPU, memory and object store; panel ids are unique', () => {
    const d = dashboard();
    const ids = d.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const metrics = new Set(dashboardQueries().flatMap((q) => parsePromql(q.expr).selectors.map((s) => s.metric)));
    for (const m of ['tokenize_wiki_docs', 'tokenize_wiki_tasks', 'tokenize_wiki_throughput_docs_per_second', 'tokenize_wiki_failed_attempts', 'tokenize_wiki_jobs_ended_total', 'ray_node_cpu_utilization', 'ray_node_mem_used', 'ray_object_store_memory']) {
      expect(metrics.has(m), m).toBe(true);
    }
    expect(d.templating.list.map((v) => v.name)).toEqual(['datasource', 'run_id']);
  });

  it('ships as a ConfigMap with the Grafana sidecar label, holding the same JSON', async () => {
    const cm = (await render('infrastructure/monitoring')).find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'tokenize-wiki-dashboard');
    expect(cm?.metadata.labels?.grafana_dashboard).toBe('1');
    expect(cm?.metadata.namespace).toBe('tokenize-wiki');
    const data = z.record(z.string(), z.string()).parse(cm?.data);
    expect(JSON.parse(data['tokenize-wiki.json'] ?? '')).toEqual(dashboard());
  });
});

describe('monitoring: the metric lists this test trusts', () => {
  it('the scrape has exactly the names src/runs/metrics.ts declares', async () => {
    const base = new Set([...(await scrape()).keys()].map((n) => n.replace(/_(bucket|sum|count)$/, '')));
    expect([...base].sort()).toEqual([...METRIC_NAMES].sort());
  });

  it(`Ray metric names were read from Ray ${RAY_VERSION_CHECKED}, the pinned Ray (re-check them when the pin moves)`, () => {
    expect(loadPins().ray).toBe(RAY_VERSION_CHECKED);
  });
});
