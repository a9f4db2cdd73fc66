/**
 * A parser of the Prometheus text exposition format (0.0.4), for tests: every sample with its
 * labels, every family's TYPE and HELP, and the problems a scraper would object to (a sample of
 * no declared family, a family declared twice, a duplicate series, a bad line).
 */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  types: Map<string, string>;
  help: Map<string, string>;
  samples: Sample[];
  problems: string[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

function parseLabels(text: string, line: string, problems: string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  let i = 0;
  while (i < text.length) {
    const eq = text.indexOf('=', i);
    const key = text.slice(i, eq);
    if (eq < 0 || !/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(key) || text[eq + 1] !== '"') {
      problems.push(`bad labels: ${line}`);
      return labels;
    }
    let j = eq + 2;
    let value = '';
    for (; j < text.length && text[j] !== '"'; j++) {
      if (text[j] === '\\') {
        const c = text[++j];
        value += c === 'n' ? '\n' : c;
      } else value += text[j];
    }
    if (Object.hasOwn(labels, key)) problems.push(`label ${key} twice: ${line}`);
    labels[key] = value;
    i = j + 1;
    if (text[i] === ',') i++;
  }
  return labels;
}

export function parseExposition(text: string): Exposition {
  const out: Exposition = { types: new Map(), help: new Map(), samples: [], problems: [] };
  const seen = new Set<string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (meta !== null) {
      const map = meta[1] === 'HELP' ? out.help : out.types;
      if (map.has(meta[2]!)) out.problems.push(`${meta[1]} twice for ${meta[2]}`);
      map.set(meta[2]!, meta[3]!);
      continue;
    }
    if (line.startsWith('#')) continue;
    const m = /^([^\s{]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null || !NAME.test(m[1]!)) {
      out.problems.push(`bad line: ${line}`);
      continue;
    }
    const labels = m[2] === undefined ? {} : parseLabels(m[2], line, out.problems);
    const value = m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : Number(m[3]);
    // Prometheus parses NaN in any case (Go's ParseFloat); prom-client writes "Nan".
    if (Number.isNaN(value) && m[3]!.toLowerCase() !== 'nan') out.problems.push(`bad value: ${line}`);
    const name = m[1]!;
    const family = [name, name.replace(/_(bucket|sum|count)$/, '')].find((n) => out.types.has(n));
    if (family === undefined) out.problems.push(`sample of no declared family: ${line}`);
    const key = `${name}{${Object.entries(labels).sort().map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(',')}}`;
    if (seen.has(key)) out.problems.push(`duplicate series ${key}`);
    seen.add(key);
    out.samples.push({ name, labels, value });
  }
  return out;
}

/** The value of the one sample of `name` whose labels include `labels`, or undefined; throws when several match. */
export function valueOf(e: Exposition, name: string, labels: Record<string, string> = {}): number | undefined {
  const found = e.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} match ${JSON.stringify(labels)}`);
  return found[0]?.value;
}
