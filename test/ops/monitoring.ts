// What the monitoring tests check against: the alert rules and dashboard queries of infrastructure/monitoring, and
// the series that really exist (a scrape of the submitter's registry, a scrape of a Ray head, kube-state-metrics).
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { SubmitterMetrics } from '../../src/runs/metrics.js';
import type { RunProgress } from '../../src/runs/progress.js';
import { repoRoot } from '../harness/paths.js';
import { expandGrafanaVariables, matcherAccepts, parsePromql, type Selector } from './promql.js';

const MONITORING = path.join(repoRoot, 'infrastructure', 'monitoring');

/** Series name -> label name -> values seen. An empty value set means "any value" (not known here). */
export type Series = Map<string, Map<string, Set<string>>>;

/** kube-state-metrics (v2) series and Prometheus's own `up` that the rules use, with their labels. */
const KUBE_METRICS: Record<string, string[]> = {
  up: ['job', 'instance', 'namespace', 'pod', 'service', 'container'],
  kube_pod_container_status_restarts_total: ['namespace', 'pod', 'container'],
  kube_pod_container_status_last_terminated_reason: ['namespace', 'pod', 'container', 'reason'],
  kube_job_status_failed: ['namespace', 'job_name', 'reason'],
  kube_cronjob_status_last_successful_time: ['namespace', 'cronjob'],
  kube_cronjob_spec_suspend: ['namespace', 'cronjob'],
};

export function kubeSeries(): Series {
  return new Map(
    Object.entries(KUBE_METRICS).map(([name, labels]) => [name, new Map(labels.map((l) => [l, new Set<string>()]))]),
  );
}

/** Labels Prometheus adds to every scraped tokenize_wiki_* and ray_* series (target labels of the monitors). */
const TARGET_LABELS = ['namespace', 'pod', 'service', 'job', 'instance', 'container', 'endpoint', 'ray_node_type'];

export interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels: { severity: 'warning' | 'critical' };
  annotations: { summary: string; runbook: string };
}

const RuleSchema = z.strictObject({
  alert: z.string().regex(/^[A-Z][A-Za-z0-9]+$/),
  expr: z.string().min(1),
  for: z
    .string()
    .regex(/^\d+[smh]$/)
    .optional(),
  labels: z.strictObject({ severity: z.enum(['warning', 'critical']) }),
  annotations: z.strictObject({ summary: z.string().min(10), runbook: z.string() }),
});

export function alertRules(): Rule[] {
  const doc = z
    .object({
      kind: z.literal('PrometheusRule'),
      spec: z.object({ groups: z.array(z.object({ name: z.string(), rules: z.array(z.unknown()) })) }),
    })
    .parse(YAML.parse(readFileSync(path.join(MONITORING, 'alerts.yaml'), 'utf8')));
  return doc.spec.groups.flatMap((g) =>
    g.rules.map((r, i) => {
      const parsed = RuleSchema.safeParse(r);
      if (!parsed.success)
        throw new Error(
          `alerts.yaml: group ${g.name} rule ${i}: ${parsed.error.issues.map((x) => `${x.path.join('.')}: ${x.message}`).join('; ')}`,
        );
      return parsed.data;
    }),
  );
}

export interface Query {
  where: string;
  expr: string;
}

const Target = z.looseObject({ expr: z.string().optional(), refId: z.string() });
const Panel = z.looseObject({
  id: z.number(),
  type: z.string(),
  title: z.string(),
  targets: z.array(Target).optional(),
});
const Dashboard = z.looseObject({
  uid: z.string(),
  title: z.string(),
  panels: z.array(Panel),
  templating: z.object({
    list: z.array(
      z.looseObject({ name: z.string(), query: z.unknown().optional(), definition: z.string().optional() }),
    ),
  }),
});

export function dashboard(): z.infer<typeof Dashboard> {
  return Dashboard.parse(JSON.parse(readFileSync(path.join(MONITORING, 'dashboards', 'tokenize-wiki.json'), 'utf8')));
}

/** Every PromQL query of the dashboard (Grafana variables expanded), and every query rule as one too. */
export function allQueries(): Query[] {
  const out: Query[] = alertRules().map((r) => ({ where: `alert ${r.alert}`, expr: r.expr }));
  const d = dashboard();
  for (const p of d.panels)
    for (const t of p.targets ?? [])
      if (t.expr) out.push({ where: `panel "${p.title}" query ${t.refId}`, expr: expandGrafanaVariables(t.expr) });
  for (const v of d.templating.list) {
    // label_values(metric, label) is Grafana's, not PromQL: its first argument is a selector.
    const m = /^label_values\((.+),\s*(\w+)\)$/.exec(v.definition ?? '');
    if (m?.[1]) out.push({ where: `variable ${v.name}`, expr: m[1] });
  }
  return out;
}

/** Parse the Prometheus text exposition format into series names, labels and values. */
export function parseExposition(text: string): Series {
  const series: Series = new Map();
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? /.exec(line);
    if (!m?.[1]) continue;
    const labels = series.get(m[1]) ?? new Map<string, Set<string>>();
    for (const [, k, v] of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g))
      labels.set(k as string, (labels.get(k as string) ?? new Set()).add(v as string));
    series.set(m[1], labels);
  }
  return series;
}

/** A real scrape of the submitter's registry after two ticks (one good, one failed), so every labelled series exists. */
export async function submitterSeries(): Promise<Series> {
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
    throughput: { docs_per_second: 40, tokens_per_second: 90_000, window_seconds: 900, docs_per_cpu_second: 20 },
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
  return parseExposition(await metrics.registry.metrics());
}

/** Problems with one selector against the known series: unknown metric, label it never has, value it never takes. */
export function selectorProblems(s: Selector, known: Series): string[] {
  const labels = known.get(s.metric);
  if (!labels) {
    const owner = s.metric.startsWith('tokenize_wiki_')
      ? 'src/runs/metrics.ts'
      : s.metric.startsWith('ray_')
        ? 'Ray'
        : 'kube-state-metrics (test/ops/monitoring.ts)';
    return [`${s.metric} is not exported by ${owner}`];
  }
  const problems: string[] = [];
  for (const m of s.matchers) {
    if (TARGET_LABELS.includes(m.label) && !labels.has(m.label)) continue;
    const values = labels.get(m.label);
    if (values === undefined) problems.push(`${s.metric} has no label ${m.label}`);
    else if (values.size > 0 && !matcherAccepts(m, [...values]))
      problems.push(`${s.metric}{${m.label}${m.op}"${m.value}"} selects nothing (values: ${[...values].join(', ')})`);
  }
  return problems;
}

/** Problems of every query whose selectors pass `which`, against `known`; syntax errors always count. */
export function queryProblems(queries: readonly Query[], known: Series, which: (metric: string) => boolean): string[] {
  return queries.flatMap((q) => {
    const parsed = parsePromql(q.expr);
    const problems = [
      ...parsed.errors,
      ...parsed.selectors.filter((s) => which(s.metric)).flatMap((s) => selectorProblems(s, known)),
    ];
    return problems.map((p) => `${q.where}: ${p}`);
  });
}
