/**
 * Which lab owns which prefix, across processes: `Lab.create` reserves its prefix with a marker file
 * `/run/weft-lab/<prefix>` holding the owner's PID (created exclusively, so two labs never share a
 * prefix), and `destroy` removes it. A lab whose owner is dead is stale; `cleanupStale` deletes
 * its namespaces. /run is a tmpfs, like the namespaces themselves, so both vanish on reboot.
 */
import { readFileSync, rmSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { compareText } from '../src/core/compare.js';
import { run } from '../src/platform/linux/run.js';
import { LabError } from './errors.js';

export const OWNER_DIR = '/run/weft-lab';

/**
 * The only names a lab makes: `<prefix>-u`, `<prefix>-n<i>`, `<prefix>-n<i>p<j>`, `<prefix>-h<i>`
 * (a host on the underlay), `<prefix>-nat<k>` (a NAT of lab/nat-lab.ts), and `<prefix>-<word>` (a namespace a test adds under the lab's
 * prefix, e.g. `-victim`; a lowercase word of up to 12 letters).
 */
export const LAB_NS_NAME = /^([a-z0-9]{1,6})-(?:u|n\d{1,2}(?:p\d{1,4})?|h\d{1,2}|nat\d{1,2}|[a-z]{1,12})$/;

/** Default for `cleanupStale`: names made with a random prefix. */
export const RANDOM_PREFIX_NS = /^wt[0-9a-f]{4}-/;

function markerPath(prefix: string): string {
  return join(OWNER_DIR, prefix);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The PID recorded for `prefix`, or undefined when there is no marker. */
export function ownerOf(prefix: string): number | undefined {
  try {
    const pid = Number(readFileSync(markerPath(prefix), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Reserves `prefix` for this process; false when a live process holds it. A dead owner's marker is taken over. */
export function reservePrefix(prefix: string): boolean {
  mkdirSync(OWNER_DIR, { recursive: true });
  try {
    writeFileSync(markerPath(prefix), `${process.pid}\n`, { flag: 'wx' });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const owner = ownerOf(prefix);
  if (owner !== undefined && (owner === process.pid || pidAlive(owner))) return false;
  writeFileSync(markerPath(prefix), `${process.pid}\n`);
  return true;
}

export function releasePrefix(prefix: string): void {
  if (ownerOf(prefix) === process.pid) rmSync(markerPath(prefix), { force: true });
}

export async function listNamespaces(): Promise<string[]> {
  const out = await run('ip', ['netns', 'list']);
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n !== '');
}

export async function namespacePids(ns: string): Promise<number[]> {
  const out = await run('ip', ['netns', 'pids', ns]).catch(() => '');
  return out
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map(Number);
}

/** Deletes a namespace (absent is fine) and its /etc/netns/<ns> directory, if any. */
export async function deleteNamespace(ns: string): Promise<void> {
  if (!LAB_NS_NAME.test(ns)) throw new LabError(`refusing to delete namespace "${ns}": not a lab name`);
  try {
    await run('ip', ['netns', 'del', ns]);
  } catch (err) {
    if (!/No such file|not found|does not exist/i.test(String(err))) throw err;
  }
  rmSync(join('/etc/netns', ns), { recursive: true, force: true });
}

/**
 * Deletes the namespaces of dead labs whose names match `pattern` (and the lab naming). A lab is
 * left alone when its owner process lives, or when it has no marker and processes still run in
 * one of its namespaces (it may belong to a lab that does not record an owner).
 */
export async function cleanupStale(pattern: RegExp, log: (line: string) => void): Promise<string[]> {
  const groups = new Map<string, string[]>();
  for (const ns of await listNamespaces()) {
    const m = LAB_NS_NAME.exec(ns);
    if (m === null || !pattern.test(ns)) continue;
    const prefix = m[1]!;
    groups.set(prefix, [...(groups.get(prefix) ?? []), ns]);
  }
  const deleted: string[] = [];
  for (const [prefix, names] of groups) {
    const owner = ownerOf(prefix);
    if (owner !== undefined && pidAlive(owner)) {
      log(`cleanupStale: ${prefix} belongs to live process ${owner}, kept`);
      continue;
    }
    if (owner === undefined) {
      const busy = (await Promise.all(names.map(namespacePids))).some((p) => p.length > 0);
      if (busy) {
        log(`cleanupStale: ${prefix} has no owner marker but processes run in it, kept`);
        continue;
      }
    }
    // Pods first, the underlay last (deleting a node takes its veths with it).
    for (const ns of [...names].sort((a, b) => b.length - a.length || compareText(b, a))) {
      try {
        await deleteNamespace(ns);
        deleted.push(ns);
      } catch (err) {
        log(`cleanupStale: deleting ${ns}: ${String(err)}`);
      }
    }
    rmSync(markerPath(prefix), { force: true });
  }
  return deleted;
}
