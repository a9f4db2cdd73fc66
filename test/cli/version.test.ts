/** `weft version` and `weft --version` through the built CLI (dist/, as `npm run build:ts` makes it). */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MESH_PROTOCOL_MAX, MESH_PROTOCOL_MIN, MESH_VERSION } from '../../src/mesh/mesh-protocol.js';
import { WIRE_VERSION } from '../../src/router/sleeve/wire.js';
import { formatVersion } from '../../src/daemon/version-info.js';

const CLI = join(process.cwd(), 'dist', 'src', 'cli', 'main.js');
const VERSION = (JSON.parse(readFileSync(join(process.cwd(), 'package.json'), 'utf8')) as { version: string }).version;
/** The commit the build recorded (scripts/build-info.mjs writes it at `npm run build:ts`), if any. */
const BUILD_INFO = join(process.cwd(), 'dist', 'build-info.json');
const COMMIT = existsSync(BUILD_INFO) ? ((JSON.parse(readFileSync(BUILD_INFO, 'utf8')) as { commit: string | null }).commit ?? undefined) : undefined;
const LINE = `weft ${VERSION} (${COMMIT === undefined ? '' : `commit ${COMMIT}, `}node ${process.versions.node}, mesh protocol ${MESH_PROTOCOL_MIN}..${MESH_PROTOCOL_MAX}, sleeve protocol ${WIRE_VERSION})\n`;

function weft(args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('weft version', () => {
  it.each([[['version']], [['--version']], [['-V']]])('weft %j prints the release, Node and the protocol versions, exit 0', (args) => {
    const r = weft(args);
    expect(r).toEqual({ code: 0, out: LINE, err: '' });
  });

  it('weft version --json gives the same as the status report', () => {
    const r = weft(['version', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toEqual({ version: VERSION, ...(COMMIT === undefined ? {} : { commit: COMMIT }), node: process.versions.node, meshProtocol: MESH_VERSION, meshProtocolMin: MESH_PROTOCOL_MIN, meshProtocolMax: MESH_PROTOCOL_MAX, sleeveProtocol: WIRE_VERSION });
  });

  it('the build records the git commit of this checkout (none outside a git work tree)', () => {
    // (The build may predate the last commit, so the commit is checked to be one of this repository's.)
    const inGit = spawnSync('git', ['rev-parse', '--is-inside-work-tree'], { encoding: 'utf8' }).status === 0;
    if (!inGit) {
      expect(COMMIT).toBeUndefined();
      return;
    }
    expect(COMMIT).toMatch(/^[0-9a-f]{12}(-dirty)?$/);
    expect(spawnSync('git', ['cat-file', '-e', `${COMMIT!.slice(0, 12)}^{commit}`]).status).toBe(0);
  });

  it.each([
    ['without a commit', { version: '1.2.3', node: '20.1.0', meshProtocol: 3, meshProtocolMin: 2, meshProtocolMax: 3, sleeveProtocol: 3 }, 'weft 1.2.3 (node 20.1.0, mesh protocol 2..3, sleeve protocol 3)'],
    ['with a commit', { version: '1.2.3', commit: 'abcdef012345', node: '20.1.0', meshProtocol: 3, meshProtocolMin: 2, meshProtocolMax: 3, sleeveProtocol: 3 }, 'weft 1.2.3 (commit abcdef012345, node 20.1.0, mesh protocol 2..3, sleeve protocol 3)'],
  ])('formatVersion %s', (_what, v, line) => {
    expect(formatVersion(v)).toBe(line);
  });

  it('an unknown argument to version is a usage error (exit 2)', () => {
    const r = weft(['version', 'extra']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('too many arguments');
  });
});
