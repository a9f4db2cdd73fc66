/**
 * Enforces the dependency direction of ARCHITECTURE.md by reading every import of production
 * code. Node built-ins are allowed everywhere; each area may import the areas and packages listed.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

interface Rule {
  areas: string[];
  packages: string[];
}

// Area of a file = the longest matching prefix.
const RULES: Record<string, Rule> = {
  'src/core': { areas: ['src/core'], packages: [] },
  'src/api': { areas: ['src/core', 'src/api'], packages: [] },
  'src/platform/linux': { areas: ['src/core', 'src/platform'], packages: [] },
  'src/platform': { areas: ['src/core', 'src/platform'], packages: [] },
  'src/mesh': { areas: ['src/core', 'src/mesh'], packages: ['msgpackr', 'sodium-native', 'noise-handshake', 'noise-curve-ed'] },
  'src/ipam': { areas: ['src/core', 'src/mesh', 'src/ipam'], packages: ['msgpackr', 'sodium-native'] },
  'src/router': { areas: ['src/core', 'src/platform', 'src/mesh', 'src/router'], packages: ['sodium-native'] },
  'src/cni': { areas: ['src/core', 'src/api', 'src/platform', 'src/cni'], packages: [] },
  lab: { areas: ['src/core', 'src/api', 'src/platform', 'lab'], packages: ['@grpc/grpc-js', '@grpc/proto-loader'] },
  'src/daemon': { areas: ['*'], packages: ['*'] },
  'src/cli': { areas: ['*'], packages: ['*'] },
  sim: { areas: ['*'], packages: ['*'] },
  bench: { areas: ['*'], packages: ['*'] },
};

// Narrower rules inside an area.
const FORBIDDEN: { from: string; to: string; why: string }[] = [
  { from: 'src/router', to: 'src/platform/linux', why: 'src/router uses platform contracts, not the Linux implementations' },
  { from: 'src/mesh', to: 'src/router', why: 'src/mesh declares the overlay contract; src/router implements it' },
  { from: 'src/daemon', to: 'src/cli', why: 'the daemon never depends on the CLI' },
];

function files(dir: string): string[] {
  const out: string[] = [];
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const e of entries) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...files(p));
    else if (p.endsWith('.ts') && !p.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

function areaOf(rel: string): string | undefined {
  return Object.keys(RULES)
    .filter((a) => rel === a || rel.startsWith(`${a}/`))
    .sort((x, y) => y.length - x.length)[0];
}

function imports(text: string): string[] {
  const out: string[] = [];
  const re = /(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s+['"]([^'"]+)['"]/gm;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) out.push((m[1] ?? m[2] ?? m[3])!);
  return out;
}

const production = ['src', 'lab', 'sim', 'bench'].flatMap((d) => files(join(ROOT, d)));

describe('architecture', () => {
  it('finds production files to check', () => {
    expect(production.length).toBeGreaterThan(20);
  });

  it('every import follows the dependency table', () => {
    const violations: string[] = [];
    for (const file of production) {
      const rel = relative(ROOT, file);
      const area = areaOf(rel);
      if (area === undefined) continue;
      const rule = RULES[area]!;
      for (const spec of imports(readFileSync(file, 'utf8'))) {
        if (spec.startsWith('node:')) continue;
        if (spec.startsWith('.')) {
          const target = relative(ROOT, resolve(dirname(file), spec));
          if (target.startsWith('test/') || (target.startsWith('bench/') && area !== 'bench') || (target.startsWith('sim/') && area !== 'bench' && area !== 'sim')) {
            violations.push(`${rel} imports test/bench code ${spec}`);
            continue;
          }
          const targetArea = areaOf(target);
          if (targetArea === 'src/daemon' && area !== 'src/cli' && area !== 'src/daemon' && area !== 'bench' && area !== 'lab') violations.push(`${rel} imports the daemon (${spec})`);
          if (targetArea === 'src/cli' && area !== 'src/cli') violations.push(`${rel} imports the CLI (${spec})`);
          for (const f of FORBIDDEN) {
            if (rel.startsWith(`${f.from}/`) && (target === f.to || target.startsWith(`${f.to}/`))) violations.push(`${rel} → ${spec}: ${f.why}`);
          }
          if (rule.areas.includes('*')) continue;
          if (!rule.areas.some((a) => target === a || target.startsWith(`${a}/`))) violations.push(`${rel} (${area}) may not import ${target}`);
        } else {
          const pkg = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
          if (rule.packages.includes('*')) continue;
          if (!rule.packages.includes(pkg)) violations.push(`${rel} (${area}) may not import package ${pkg}`);
        }
      }
    }
    expect(violations).toEqual([]);
  });

  it('the rules catch a violation (self-check)', () => {
    const fake = "import { Router } from '../../router/router.js';\nimport x from 'msgpackr';";
    expect(imports(fake)).toEqual(['../../router/router.js', 'msgpackr']);
  });
});
