// PromQL checks for the alert rules and the dashboard: parse with Prometheus's own grammar (the lezer parser that
// Prometheus's web UI uses) and list every metric selector with its label matchers.
import { parser } from '@prometheus-io/lezer-promql';

export interface Matcher {
  label: string;
  op: string;
  value: string;
}

export interface Selector {
  metric: string;
  matchers: Matcher[];
}

export interface Parsed {
  errors: string[];
  selectors: Selector[];
}

/**
 * Grafana's template variables are not PromQL; replace them with values of the same syntactic kind (a range; `.*` for
 * a label variable, which our queries use with =~ since it may hold several values) before parsing.
 */
export function expandGrafanaVariables(expr: string): string {
  return expr
    .replaceAll('$__rate_interval', '5m')
    .replaceAll('$__interval', '1m')
    .replaceAll('$__range', '6h')
    .replace(/\$\{?\w+\}?/g, '.*');
}

export function parsePromql(expr: string): Parsed {
  const tree = parser.parse(expr);
  const errors: string[] = [];
  const selectors: Selector[] = [];
  const text = (n: typeof tree.topNode | null): string => (n ? expr.slice(n.from, n.to) : '');
  tree.iterate({
    enter(ref) {
      if (ref.type.isError) {
        errors.push(
          `syntax error at offset ${ref.from}: "${expr.slice(Math.max(0, ref.from - 20), ref.to + 20).replace(/\s+/g, ' ')}"`,
        );
        return;
      }
      if (ref.name !== 'VectorSelector') return;
      const node = ref.node;
      const matchers: Matcher[] = [];
      const list = node.getChild('LabelMatchers');
      let metric = text(node.getChild('Identifier'));
      for (let m = list?.firstChild ?? null; m; m = m.nextSibling) {
        if (!m.name.endsWith('LabelMatcher')) continue;
        const label = text(m.getChild('LabelName')) || text(m.getChild('QuotedLabelName'));
        const value = JSON.parse(text(m.getChild('StringLiteral')) || '""') as string;
        const matcher = { label, op: text(m.getChild('MatchOp')), value };
        if (label === '__name__' && matcher.op === '=') metric = value;
        else matchers.push(matcher);
      }
      selectors.push({ metric, matchers });
    },
  });
  return { errors, selectors };
}

/** Does a label matcher accept at least one of the values a metric really has? */
export function matcherAccepts(m: Matcher, values: readonly string[]): boolean {
  const anchored = (v: string): boolean => new RegExp(`^(?:${m.value})$`).test(v);
  switch (m.op) {
    case '=':
      return values.includes(m.value);
    case '!=':
      return values.some((v) => v !== m.value);
    case '=~':
      return values.some(anchored);
    case '!~':
      return values.some((v) => !anchored(v));
    default:
      throw new Error(`unknown match operator ${m.op}`);
  }
}
