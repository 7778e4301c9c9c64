/**
 * Just enough of PromQL's lexical structure to list what an expression reads: the metric
 * names it selects, the label matchers on each, and the labels it groups by. Syntax itself is
 * checked by promtool; this only has to find names reliably in valid expressions.
 */

export interface Matcher {
  label: string;
  op: "=" | "!=" | "=~" | "!~";
  value: string;
}

export interface Selector {
  /** Metric name, or null for a bare `{…}` selector. */
  metric: string | null;
  matchers: Matcher[];
}

export interface PromqlRefs {
  selectors: Selector[];
  /** Labels named in by/without/on/ignoring/group_left/group_right lists. */
  groupingLabels: string[];
}

type Token =
  | { kind: "ident"; text: string }
  | { kind: "string"; text: string }
  | { kind: "number"; text: string }
  | { kind: "punct"; text: string };

const AGGREGATORS = new Set([
  "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
  "bottomk", "topk", "quantile", "limitk", "limit_ratio",
]);
const GROUPING = new Set(["by", "without", "on", "ignoring", "group_left", "group_right"]);
const KEYWORDS = new Set(["and", "or", "unless", "bool", "offset", "atan2", "inf", "nan", "start", "end"]);

function tokenize(expr: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < expr.length) {
    const rest = expr.slice(i);
    const c = expr[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === "#") {
      // A comment runs to the end of the line.
      const nl = expr.indexOf("\n", i);
      i = nl === -1 ? expr.length : nl;
    } else if (c === '"' || c === "'" || c === "`") {
      let j = i + 1;
      let text = "";
      while (j < expr.length && expr[j] !== c) {
        if (expr[j] === "\\" && c !== "`") {
          text += expr[j + 1] ?? "";
          j += 2;
        } else {
          text += expr[j];
          j++;
        }
      }
      if (j >= expr.length) throw new Error(`unterminated string in: ${expr}`);
      tokens.push({ kind: "string", text });
      i = j + 1;
    } else {
      const num = /^(0x[0-9a-fA-F]+|(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?)((ms|[smhdwy])(\d+(ms|[smhdwy]))*)?/.exec(rest);
      const ident = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(rest);
      const op = /^(=~|!~|!=|==|<=|>=|[-+*/%^<>=(){}[\],@:])/.exec(rest);
      if (num) {
        tokens.push({ kind: "number", text: num[0] });
        i += num[0].length;
      } else if (ident) {
        tokens.push({ kind: "ident", text: ident[0] });
        i += ident[0].length;
      } else if (op) {
        tokens.push({ kind: "punct", text: op[0] });
        i += op[0].length;
      } else {
        throw new Error(`unexpected "${c}" at ${i} in: ${expr}`);
      }
    }
  }
  return tokens;
}

/** Lists what `expr` reads (Grafana's interval variables allowed). Throws on text that is not PromQL-shaped. */
export function promqlRefs(expr: string): PromqlRefs {
  const t = tokenize(withoutGrafanaVariables(expr));
  const selectors: Selector[] = [];
  const groupingLabels: string[] = [];
  const at = (k: number) => t[k];
  const is = (k: number, text: string) => at(k)?.kind === "punct" && at(k)!.text === text;

  const readMatchers = (start: number): [Matcher[], number] => {
    // start points at "{"
    const matchers: Matcher[] = [];
    let k = start + 1;
    while (!is(k, "}")) {
      const label = at(k);
      const op = at(k + 1);
      const value = at(k + 2);
      if (label?.kind !== "ident" || op?.kind !== "punct" || value?.kind !== "string") {
        throw new Error(`malformed label matcher in: ${expr}`);
      }
      if (!["=", "!=", "=~", "!~"].includes(op.text)) throw new Error(`bad matcher operator ${op.text} in: ${expr}`);
      matchers.push({ label: label.text, op: op.text as Matcher["op"], value: value.text });
      k += 3;
      if (is(k, ",")) k++;
    }
    return [matchers, k + 1];
  };

  let k = 0;
  while (k < t.length) {
    const tok = t[k]!;
    if (tok.kind === "punct" && tok.text === "[") {
      // Range or subquery: durations and a colon, nothing that names a metric.
      while (k < t.length && !is(k, "]")) k++;
      k++;
    } else if (tok.kind === "punct" && tok.text === "{") {
      const [matchers, next] = readMatchers(k);
      selectors.push({ metric: null, matchers });
      k = next;
    } else if (tok.kind === "ident") {
      const name = tok.text;
      if (GROUPING.has(name)) {
        if (is(k + 1, "(")) {
          k += 2;
          while (k < t.length && !is(k, ")")) {
            const label = at(k)!;
            if (label.kind === "ident") groupingLabels.push(label.text);
            else if (!(label.kind === "punct" && label.text === ",")) throw new Error(`bad label list in: ${expr}`);
            k++;
          }
        }
        k++;
      } else if (KEYWORDS.has(name.toLowerCase()) || AGGREGATORS.has(name) || is(k + 1, "(")) {
        // An operator keyword, an aggregation or a function call: not a metric.
        k++;
      } else if (is(k + 1, "{")) {
        const [matchers, next] = readMatchers(k + 1);
        selectors.push({ metric: name, matchers });
        k = next;
      } else {
        selectors.push({ metric: name, matchers: [] });
        k++;
      }
    } else {
      k++;
    }
  }
  return { selectors, groupingLabels };
}

/** `{{label}}` references in a Grafana legend format. */
export function legendLabels(legend: string): string[] {
  return [...legend.matchAll(/\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}/g)].map((m) => m[1]!);
}

/** Grafana's built-in interval variables, replaced by plain durations so promtool can parse. */
export function withoutGrafanaVariables(expr: string): string {
  return expr.replace(/\$__(rate_interval|interval|range)\b|\$\{__(rate_interval|interval|range)\}/g, (m) =>
    m.includes("range") ? "1h" : "1m",
  );
}
