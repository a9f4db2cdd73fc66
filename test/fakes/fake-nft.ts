/**
 * An in-memory nftables for unit tests: enough of nft's language to hold what the pod guard
 * writes (tables, set and map elements, named counters; rules are kept as text), one transaction
 * per `apply` (a failing line leaves nothing changed), and `listTable` in `nft -j` form.
 */
import type { Nft, NftCounter, NftFamily, NftScripts } from '../../src/platform/nft.js';

interface FakeTable {
  /** set or map name → elements as written ('"vw…" . 02:…', '"vw…" : "vw…"'). */
  sets: Map<string, Set<string>>;
  counters: Map<string, number>;
  chains: Map<string, string[]>;
}

export class FakeNft implements Nft, NftScripts {
  readonly tables = new Map<string, FakeTable>();
  readonly scripts: string[] = [];
  /** The next `apply` calls fail with these messages (one each). */
  readonly failNext: string[] = [];
  /** Every `apply` fails with this message while it is set. */
  broken: string | undefined = undefined;
  listCalls = 0;

  async replaceTable(family: NftFamily, name: string, body: string): Promise<void> {
    await this.apply(`add table ${family} ${name}\ndelete table ${family} ${name}\ntable ${family} ${name} {\n${body}\n}\n`);
  }

  async deleteTable(family: NftFamily, name: string): Promise<void> {
    this.tables.delete(`${family} ${name}`);
    return Promise.resolve();
  }

  apply(script: string): Promise<void> {
    this.scripts.push(script);
    const fail = this.failNext.shift() ?? this.broken;
    if (fail !== undefined) return Promise.reject(new Error(fail));
    const next = new Map([...this.tables].map(([k, t]) => [k, clone(t)]));
    try {
      run(next, script);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    this.tables.clear();
    for (const [k, t] of next) this.tables.set(k, t);
    return Promise.resolve();
  }

  replaceSetElements(family: NftFamily, table: string, set: string, elements: readonly string[]): Promise<void> {
    const sets = this.tables.get(`${family} ${table}`)?.sets;
    if (sets?.has(set) !== true) return Promise.reject(new Error(`No such file or directory: set ${family} ${table} ${set}`));
    sets.set(set, new Set(elements));
    return Promise.resolve();
  }

  counters(): Promise<NftCounter[]> {
    const out: NftCounter[] = [];
    for (const [key, t] of this.tables) {
      const [family, table] = key.split(' ') as [string, string];
      for (const [name, packets] of t.counters) out.push({ family, table, name, packets, bytes: packets * 100 });
    }
    return Promise.resolve(out);
  }

  listTable(family: NftFamily, name: string): Promise<unknown[] | undefined> {
    this.listCalls++;
    const t = this.tables.get(`${family} ${name}`);
    if (t === undefined) return Promise.resolve(undefined);
    const out: unknown[] = [{ metainfo: { version: 'fake' } }, { table: { family, name } }];
    for (const [c, packets] of t.counters) out.push({ counter: { family, name: c, table: name, packets, bytes: packets * 100 } });
    for (const [s, elems] of t.sets) {
      const elem = [...elems].map((e) => {
        if (e.includes(' : ')) return e.split(' : ').map(unquote);
        const parts = e.split(' . ').map(unquote);
        return parts.length === 1 ? parts[0] : { concat: parts };
      });
      out.push(s === 'pod_drops' ? { map: { family, name: s, table: name, elem } } : { set: { family, name: s, table: name, elem } });
    }
    return Promise.resolve(out);
  }

  /** Elements of a set (tests). */
  elements(table: string, set: string): string[] {
    return [...(this.tables.get(table)?.sets.get(set) ?? [])].sort();
  }

  /** Bumps a counter as if the kernel dropped `n` packets (tests). */
  count(table: string, counter: string, n: number): void {
    const t = this.tables.get(table)!;
    t.counters.set(counter, (t.counters.get(counter) ?? 0) + n);
  }
}

function unquote(s: string): string {
  return s.replace(/^"|"$/g, '');
}

function clone(t: FakeTable): FakeTable {
  return { sets: new Map([...t.sets].map(([k, v]) => [k, new Set(v)])), counters: new Map(t.counters), chains: new Map([...t.chains].map(([k, v]) => [k, [...v]])) };
}

function table(tables: Map<string, FakeTable>, id: string, create: boolean): FakeTable {
  let t = tables.get(id);
  if (t === undefined) {
    if (!create) throw new Error(`Error: No such file or directory: table ${id}`);
    t = { sets: new Map(), counters: new Map(), chains: new Map() };
    tables.set(id, t);
  }
  return t;
}

/** Runs the subset of nft the guard writes; throws (like nft) on what does not exist. */
function run(tables: Map<string, FakeTable>, script: string): void {
  const lines = script.split('\n');
  let block: { id: string; chain: string | undefined } | undefined;
  for (const raw of lines) {
    const line = raw.trim();
    if (line === '') continue;
    if (block !== undefined) {
      const t = table(tables, block.id, true);
      if (line === '}') {
        if (block.chain !== undefined) block.chain = undefined;
        else block = undefined;
        continue;
      }
      let m = /^counter (\S+) \{ *\}$/.exec(line);
      if (m !== null) {
        if (!t.counters.has(m[1]!)) t.counters.set(m[1]!, 0);
        continue;
      }
      m = /^(?:set|map) (\S+) \{.*\}$/.exec(line);
      if (m !== null) {
        if (!t.sets.has(m[1]!)) t.sets.set(m[1]!, new Set());
        continue;
      }
      m = /^chain (\S+) \{(.*)\}$/.exec(line);
      if (m !== null) {
        const rules = t.chains.get(m[1]!) ?? [];
        t.chains.set(m[1]!, rules);
        if (!m[2]!.includes('type filter')) rules.push(...m[2]!.split(';').map((x) => x.trim()).filter((x) => x !== ''));
        continue;
      }
      m = /^chain (\S+) \{$/.exec(line);
      if (m !== null) {
        if (!t.chains.has(m[1]!)) t.chains.set(m[1]!, []);
        block.chain = m[1]!;
        continue;
      }
      if (block.chain !== undefined) {
        t.chains.get(block.chain)!.push(line);
        continue;
      }
      throw new Error(`fake nft: cannot read "${line}" in a table block`);
    }
    let m = /^table (\w+) (\S+) \{$/.exec(line);
    if (m !== null) {
      block = { id: `${m[1]} ${m[2]}`, chain: undefined };
      continue;
    }
    m = /^(add|delete) table (\w+) (\S+)$/.exec(line);
    if (m !== null) {
      const id = `${m[2]} ${m[3]}`;
      if (m[1] === 'add') table(tables, id, true);
      else if (!tables.delete(id)) throw new Error(`Error: No such file or directory: table ${id}`);
      continue;
    }
    m = /^flush chain (\w+) (\S+) (\S+)$/.exec(line);
    if (m !== null) {
      const t = table(tables, `${m[1]} ${m[2]}`, false);
      if (!t.chains.has(m[3]!)) throw new Error(`Error: No such file or directory: chain ${m[3]}`);
      t.chains.set(m[3]!, []);
      continue;
    }
    m = /^flush (?:set|map) (\w+) (\S+) (\S+)$/.exec(line);
    if (m !== null) {
      const t = table(tables, `${m[1]} ${m[2]}`, false);
      if (!t.sets.has(m[3]!)) throw new Error(`Error: No such file or directory: set ${m[3]}`);
      t.sets.set(m[3]!, new Set());
      continue;
    }
    m = /^(add|delete) counter (\w+) (\S+) (\S+)$/.exec(line);
    if (m !== null) {
      const t = table(tables, `${m[2]} ${m[3]}`, false);
      if (m[1] === 'add') {
        if (!t.counters.has(m[4]!)) t.counters.set(m[4]!, 0);
      } else {
        if (!t.counters.has(m[4]!)) throw new Error(`Error: No such file or directory: counter ${m[4]}`);
        const used = [...(t.sets.get('pod_drops') ?? [])].some((e) => e.endsWith(`: "${m![4]}"`));
        if (used) throw new Error(`Error: Device or resource busy: counter ${m[4]} is in use`);
        t.counters.delete(m[4]!);
      }
      continue;
    }
    m = /^(add|delete) element (\w+) (\S+) (\S+) \{ (.*) \}$/.exec(line);
    if (m !== null) {
      const t = table(tables, `${m[2]} ${m[3]}`, false);
      const set = t.sets.get(m[4]!);
      if (set === undefined) throw new Error(`Error: No such file or directory: set ${m[4]}`);
      for (const e of m[5]!.split(', ')) {
        if (m[1] === 'add') {
          const target = / : "(\S+)"$/.exec(e);
          if (target !== null && !t.counters.has(target[1]!)) throw new Error(`Error: No such file or directory: counter ${target[1]}`);
          set.add(e);
        } else if (!set.delete(e)) throw new Error(`Error: No such file or directory: element ${e}`);
      }
      continue;
    }
    throw new Error(`fake nft: cannot read "${line}"`);
  }
}
