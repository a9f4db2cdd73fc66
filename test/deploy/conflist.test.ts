/**
 * The conflist deploy's ConfigMap carries: accepted by the plugin's own config parser, the same
 * as what `weft cni-install` would make for its paths, and those paths are the router's (its
 * --api-socket and --state-dir) as the DaemonSet mounts them. And `cni-install --conflist`: a
 * given conflist is checked, installed as it is, and narrowed to its chained plugins' versions.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { conflist, conflistProblems, CONFLIST_NAME, installCni } from '../../src/cni/install.js';
import { parseNetConf } from '../../src/cni/netconf.js';
import { releaseJournalDir } from '../../src/api/paths.js';
import { ConfigError } from '../../src/core/errors.js';
import { CONFLIST_KEY, deployConflist, deployContainer, deployContainerArgs, deployPodSpec, loadDeployManifests } from '../../lab/deploy-manifests.js';

const manifests = loadDeployManifests();
const list = deployConflist(manifests) as { cniVersion: string; name: string; plugins: Record<string, unknown>[] };
const routerArgs = deployContainerArgs('weft', { nodeName: 'n1', hostIP: '198.18.0.1' }, manifests);
const arg = (flag: string): string => routerArgs[routerArgs.indexOf(flag) + 1]!;

describe("deploy's conflist", () => {
  it('is installed under the name cni-install uses, so it sorts first', () => {
    expect(CONFLIST_KEY).toBe(CONFLIST_NAME);
  });

  it("passes cni-install's check and the plugin's config parser, as a runtime hands it over", () => {
    expect(conflistProblems(list)).toEqual([]);
    const conf = parseNetConf({ ...list.plugins[0], cniVersion: list.cniVersion, name: list.name });
    expect(conf.type).toBe('weft');
    expect(conf.socket).toBe(arg('--api-socket'));
    expect(conf.journalDir).toBe(releaseJournalDir(arg('--state-dir')));
  });

  it('is what cni-install makes for those paths (weft, then portmap), so the two cannot drift', () => {
    const weft = list.plugins[0] as { socket: string; journalDir: string };
    expect(list).toEqual(conflist({ socket: weft.socket, journalDir: weft.journalDir }));
  });

  it("names host paths the router's pod mounts at the same place", () => {
    const spec = deployPodSpec(manifests);
    const router = deployContainer('weft', manifests);
    const weft = list.plugins[0] as { socket: string; journalDir: string };
    /** The host path a path in the router's container is, through its hostPath mounts. */
    const mounted = (path: string): string | undefined => {
      const m = (router.volumeMounts ?? []).find((x) => path === x.mountPath || path.startsWith(`${x.mountPath}/`));
      const v = m && (spec.volumes ?? []).find((x) => x.name === m.name);
      return v?.hostPath === undefined ? undefined : path.replace(m!.mountPath, v.hostPath.path);
    };
    expect(mounted(weft.socket)).toBe(weft.socket);
    expect(mounted(weft.journalDir)).toBe(weft.journalDir);
  });
});

describe('conflistProblems', () => {
  type List = { cniVersion: string; name: string; plugins: Record<string, unknown>[] };
  /** Each case makes a changed copy of deploy's conflist (or something else entirely). */
  const cases: { name: string; make: (l: List) => unknown; problem: RegExp }[] = [
    { name: 'not an object', make: () => [], problem: /must be a JSON object/ },
    { name: 'no plugins', make: (l) => ({ ...l, plugins: [] }), problem: /plugins must be a non-empty array/ },
    { name: 'weft not first', make: (l) => ({ ...l, plugins: [...l.plugins].reverse() }), problem: /first plugin must be weft/ },
    { name: 'an ipam section', make: (l) => ({ ...l, plugins: [{ ...l.plugins[0], ipam: { type: 'host-local' } }] }), problem: /weft plugin: ipam is not supported/ },
    { name: 'a key weft cannot honour', make: (l) => ({ ...l, plugins: [{ ...l.plugins[0], hairpinMode: false }] }), problem: /weft plugin: .*hairpinMode/ },
    { name: 'a relative socket', make: (l) => ({ ...l, plugins: [{ ...l.plugins[0], socket: 'run/weft.sock' }] }), problem: /weft plugin: .*socket must be an absolute path/ },
    { name: 'a CNI version weft does not speak', make: (l) => ({ ...l, cniVersion: '0.4.0' }), problem: /CNI version "0.4.0" is not one weft supports/ },
    { name: 'a bad name', make: (l) => ({ ...l, name: '-weft' }), problem: /name "-weft" must start/ },
    { name: 'a chained plugin without a type', make: (l) => ({ ...l, plugins: [l.plugins[0], { capabilities: {} }] }), problem: /plugins\[1\] must be an object with a type/ },
  ];
  it.each(cases)('refuses $name', ({ make, problem }) => {
    const problems = conflistProblems(make(structuredClone(list)));
    expect(problems.length).toBe(1);
    expect(problems[0]).toMatch(problem);
  });
});

describe('installCni with a given conflist', () => {
  let dir: string;
  let binDir: string;
  let confDir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'weft-deploy-conflist-'));
    binDir = join(dir, 'bin');
    confDir = join(dir, 'net.d');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('installs it as it is, and reports its chained plugins missing', () => {
    const r = installCni({ shim: false, binDir, confDir, conflist: list });
    expect(JSON.parse(readFileSync(r.conflist, 'utf8'))).toEqual(list);
    expect(r.chainedMissing).toEqual(['portmap']);
  });

  it("narrows its cniVersions to what a chained plugin reports (an older portmap)", () => {
    mkdirSync(binDir, { recursive: true });
    writeFileSync(join(binDir, 'portmap'), '#!/bin/sh\necho \'{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}\'\n');
    chmodSync(join(binDir, 'portmap'), 0o755);
    const r = installCni({ shim: false, binDir, confDir, conflist: list });
    expect(JSON.parse(readFileSync(r.conflist, 'utf8'))).toEqual({ ...list, cniVersions: ['1.0.0'] });
    expect(r.chainedMissing).toEqual([]);
  });

  it('refuses a bad one with every problem, before writing anything', () => {
    const bad = { ...list, cniVersion: '0.3.1', plugins: [{ ...list.plugins[0], bridge: 'br0' }] };
    let err: unknown;
    try {
      installCni({ shim: false, binDir, confDir, conflist: bad });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems).toEqual([expect.stringMatching(/CNI version "0.3.1"/), expect.stringMatching(/weft plugin: .*bridge/)]);
    expect(existsSync(confDir) ? readdirSync(confDir) : []).toEqual([]);
  });
});

describe('weft cni-install --conflist (the built CLI)', () => {
  const cli = join(process.cwd(), 'dist', 'src', 'cli', 'main.js');
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'weft-deploy-cli-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const run = (...args: string[]) => spawnSync(process.execPath, [cli, 'cni-install', '--bin-dir', join(dir, 'bin'), '--conf-dir', join(dir, 'net.d'), ...args], { encoding: 'utf8' });

  const cases: { name: string; file: string | undefined; args: string[]; stderr: RegExp }[] = [
    { name: 'a flag the conflist says itself', file: JSON.stringify(list), args: ['--socket', '/run/other.sock', '--no-portmap'], stderr: /--socket cannot be given with --conflist[\s\S]*--no-portmap cannot be given with --conflist/ },
    { name: 'a file that is not JSON', file: '{"cniVersion": ', args: [], stderr: /--conflist .*conflist\.json: not JSON/ },
    { name: 'a missing file', file: undefined, args: [], stderr: /--conflist .*conflist\.json: .*ENOENT|no such file/ },
    { name: 'a conflist the plugin would refuse', file: JSON.stringify({ ...list, plugins: [{ ...list.plugins[0], ipam: {} }] }), args: [], stderr: /weft plugin: ipam is not supported/ },
  ];
  it.each(cases)('exits 2 on $name, writing nothing', ({ file, args, stderr }) => {
    expect(existsSync(cli), 'the built CLI (npm run build)').toBe(true);
    const path = join(dir, 'conflist.json');
    if (file !== undefined) writeFileSync(path, file);
    const r = run('--conflist', path, ...args);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(stderr);
    expect(existsSync(join(dir, 'bin')) || existsSync(join(dir, 'net.d'))).toBe(false);
  });
});
