/**
 * Releases that could not reach the router. The CNI plugin records a DEL here when the daemon's
 * socket does not answer (so DEL still succeeds and nothing leaks); the daemon replays the
 * entries when it runs and removes each one once the release is done. One small JSON file per
 * (container id, interface), written atomically (temp file, fsync, rename), so concurrent plugin
 * runs never interleave and a crash never leaves half an entry.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomicSync } from '../core/atomic-file.js';
import { WeftError } from '../core/errors.js';

export interface JournaledRelease {
  containerId: string;
  /** undefined: every interface of the container. */
  ifName?: string;
  /** Epoch ms when it was journaled. */
  at: number;
}

const SUFFIX = '.release.json';

export class ReleaseJournal {
  readonly dir: string;
  /** Files that could not be read as an entry (left in place for a human; the daemon logs them). */
  readonly unreadable: string[] = [];

  constructor(dir: string) {
    this.dir = dir;
  }

  private file(containerId: string, ifName: string | undefined): string {
    const h = createHash('sha256').update(`${containerId}\0${ifName ?? '*'}`).digest('hex').slice(0, 32);
    return join(this.dir, `${h}${SUFFIX}`);
  }

  record(containerId: string, ifName: string | undefined, at = Date.now()): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const entry: JournaledRelease = ifName === undefined ? { containerId, at } : { containerId, ifName, at };
    writeFileAtomicSync(this.file(containerId, ifName), JSON.stringify(entry), 0o600);
  }

  /** The entries waiting, oldest first. */
  pending(): JournaledRelease[] {
    let names: string[];
    try {
      names = readdirSync(this.dir).filter((n) => n.endsWith(SUFFIX));
    } catch {
      return [];
    }
    const out: JournaledRelease[] = [];
    this.unreadable.length = 0;
    for (const n of names) {
      try {
        const e = JSON.parse(readFileSync(join(this.dir, n), 'utf8')) as Partial<JournaledRelease>;
        if (typeof e.containerId !== 'string' || (e.ifName !== undefined && typeof e.ifName !== 'string') || typeof e.at !== 'number') throw new WeftError('ERR_JOURNAL_ENTRY', 'bad shape');
        out.push(e.ifName === undefined ? { containerId: e.containerId, at: e.at } : { containerId: e.containerId, ifName: e.ifName, at: e.at });
      } catch {
        this.unreadable.push(join(this.dir, n));
      }
    }
    return out.sort((a, b) => a.at - b.at);
  }

  done(entry: JournaledRelease): void {
    try {
      unlinkSync(this.file(entry.containerId, entry.ifName));
    } catch {
      // already gone
    }
  }
}
