/**
 * A small DOT reader for the tests of `weft graph`: enough of the language to read back what
 * src/cli/mesh-dot.ts writes and to reject what it must never write. Statements: `graph [..]`,
 * `node [..]`, `edge [..]` defaults, node statements, edge statements (`--` chains), subgraphs
 * (their contents are collected with `subgraph` set), ids as quoted strings (with `\"`, `\\` and
 * the other escapes kept as written, as Graphviz does) or bare words. Anything else throws with
 * the offset, so a stray quote or bracket in a label fails the test.
 */

export interface DotNode {
  id: string;
  attrs: Record<string, string>;
  subgraph: string | null;
}
export interface DotEdge {
  a: string;
  b: string;
  attrs: Record<string, string>;
  subgraph: string | null;
}
export interface DotGraph {
  strict: boolean;
  kind: 'graph' | 'digraph';
  name: string | null;
  graphAttrs: Record<string, string>;
  nodes: Map<string, DotNode>;
  edges: DotEdge[];
}

type Tok = { t: 'id'; v: string; quoted: boolean; at: number } | { t: 'punct'; v: string; at: number };

function tokens(text: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '/' && text[i + 1] === '/') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === '"') {
      const at = i;
      let v = '';
      i++;
      for (;;) {
        if (i >= text.length) throw new Error(`DOT: unterminated string at ${at}`);
        const d = text[i]!;
        if (d === '\\' && i + 1 < text.length) {
          // Graphviz keeps escapes but \" (and a backslash-newline continuation).
          const n = text[i + 1]!;
          if (n === '"') v += '"';
          else if (n === '\n') v += '';
          else v += `\\${n}`;
          i += 2;
          continue;
        }
        if (d === '"') break;
        if (d === '\n') throw new Error(`DOT: raw line break inside the string at ${at}`);
        v += d;
        i++;
      }
      i++;
      out.push({ t: 'id', v, quoted: true, at });
    } else if (c === '-' && (text[i + 1] === '-' || text[i + 1] === '>')) {
      out.push({ t: 'punct', v: text.slice(i, i + 2), at: i });
      i += 2;
    } else if ('{}[]=;,'.includes(c)) {
      out.push({ t: 'punct', v: c, at: i });
      i++;
    } else if (/[A-Za-z0-9_.\u0080-\uffff-]/.test(c)) {
      const at = i;
      while (i < text.length && /[A-Za-z0-9_.\u0080-\uffff-]/.test(text[i]!) && !(text[i] === '-' && (text[i + 1] === '-' || text[i + 1] === '>'))) i++;
      out.push({ t: 'id', v: text.slice(at, i), quoted: false, at });
    } else {
      throw new Error(`DOT: unexpected ${JSON.stringify(c)} at ${i}`);
    }
  }
  return out;
}

/** Parses one DOT graph; throws on anything it does not understand. */
export function parseDot(text: string): DotGraph {
  const toks = tokens(text);
  let p = 0;
  const peek = (): Tok | undefined => toks[p];
  const take = (): Tok => {
    const t = toks[p++];
    if (t === undefined) throw new Error('DOT: unexpected end');
    return t;
  };
  const expect = (v: string): void => {
    const t = take();
    if (t.t !== 'punct' || t.v !== v) throw new Error(`DOT: expected ${v} at ${t.at}, got ${t.v}`);
  };
  const id = (): string => {
    const t = take();
    if (t.t !== 'id') throw new Error(`DOT: expected an id at ${t.at}, got ${t.v}`);
    return t.v;
  };
  const isPunct = (v: string): boolean => {
    const t = peek();
    return t !== undefined && t.t === 'punct' && t.v === v;
  };
  const attrList = (): Record<string, string> => {
    const a: Record<string, string> = {};
    while (isPunct('[')) {
      take();
      while (!isPunct(']')) {
        const k = id();
        expect('=');
        a[k] = id();
        if (isPunct(',') || isPunct(';')) take();
      }
      expect(']');
    }
    return a;
  };

  let strict = false;
  let head = id();
  if (head.toLowerCase() === 'strict') {
    strict = true;
    head = id();
  }
  if (head !== 'graph' && head !== 'digraph') throw new Error(`DOT: expected graph or digraph, got ${head}`);
  const g: DotGraph = { strict, kind: head, name: null, graphAttrs: {}, nodes: new Map(), edges: [] };
  if (!isPunct('{')) g.name = id();
  const edgeOp = head === 'graph' ? '--' : '->';

  const body = (subgraph: string | null): void => {
    expect('{');
    while (!isPunct('}')) {
      const t = take();
      if (t.t === 'punct' && t.v === ';') continue;
      if (t.t !== 'id') throw new Error(`DOT: unexpected ${t.v} at ${t.at}`);
      if (!t.quoted && t.v === 'subgraph') {
        const name = isPunct('{') ? '' : id();
        body(name);
        continue;
      }
      if (!t.quoted && (t.v === 'graph' || t.v === 'node' || t.v === 'edge')) {
        const a = attrList();
        if (t.v === 'graph' && subgraph === null) Object.assign(g.graphAttrs, a);
        continue;
      }
      if (isPunct('=')) {
        take();
        const v = id();
        if (subgraph === null) g.graphAttrs[t.v] = v;
        continue;
      }
      const chain = [t.v];
      while (isPunct('--') || isPunct('->')) {
        const op = take();
        if (op.v !== edgeOp) throw new Error(`DOT: ${op.v} in a ${head} at ${op.at}`);
        chain.push(id());
      }
      const a = attrList();
      for (const n of chain) if (!g.nodes.has(n)) g.nodes.set(n, { id: n, attrs: {}, subgraph });
      if (chain.length === 1) Object.assign(g.nodes.get(t.v)!.attrs, a);
      for (let i = 0; i + 1 < chain.length; i++) g.edges.push({ a: chain[i]!, b: chain[i + 1]!, attrs: { ...a }, subgraph });
    }
    expect('}');
  };
  body(null);
  if (p !== toks.length) throw new Error(`DOT: text after the graph at ${toks[p]!.at}`);
  return g;
}
