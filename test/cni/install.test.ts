/**
 * Install: the wrapper (absolute node + entry, runs with an empty environment) and the conflist
 * (weft first, portmap chained, atomic, sorting first), in temp directories.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { conflist, CONFLIST_NAME, installCni, shellQuote, wrapperScript } from '../../src/cni/install.js';

/** The built plugin; WEFT_CNI_MAIN points elsewhere (e.g. a private build) when set. */
const SHIM = join(process.cwd(), 'build', 'weft-cni');
const BUILT_MAIN = process.env.WEFT_CNI_MAIN ?? join(process.cwd(), 'dist', 'src', 'cni', 'main.js');
let dir: string;
let binDir: string;
let confDir: string;
let fakeMain: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'weft-install-'));
  binDir = join(dir, 'opt', 'cni', 'bin');
  confDir = join(dir, 'etc', 'cni', 'net.d');
  fakeMain = join(dir, "it's main.mjs");
  writeFileSync(fakeMain, 'process.stdout.write(JSON.stringify({ argv: process.argv.slice(2), env: process.env }));\n');
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('installCni', () => {
  it('without the native binary: the wrapper as weft and weft-node, and the conflist, nothing else', () => {
    const r = installCni({ shim: false, binDir, confDir, pluginMain: fakeMain, portmap: true });
    expect(r).toEqual({ plugin: join(binDir, 'weft'), native: false, wrapper: join(binDir, 'weft-node'), conflist: join(confDir, CONFLIST_NAME), shadowedBy: [], chainedMissing: ['portmap'] });
    expect(statSync(r.wrapper).mode & 0o777).toBe(0o755);
    expect(readFileSync(r.plugin, 'utf8')).toBe(readFileSync(r.wrapper, 'utf8'));
    expect(readdirSync(binDir).sort()).toEqual(['weft', 'weft-node']);
    expect(readdirSync(confDir)).toEqual([CONFLIST_NAME]);
    const list = JSON.parse(readFileSync(r.conflist, 'utf8')) as { cniVersion: string; cniVersions: string[]; name: string; plugins: Record<string, unknown>[] };
    expect(list).toEqual({
      cniVersion: '1.0.0',
      cniVersions: ['1.0.0', '1.1.0'],
      name: 'weft',
      plugins: [
        { type: 'weft', socket: '/run/weft/weft.sock', journalDir: '/var/lib/weft/pending-releases' },
        { type: 'portmap', capabilities: { portMappings: true }, snat: true },
      ],
    });
  });

  it('the wrapper runs with an empty environment (no PATH) and passes arguments', () => {
    const r = installCni({ shim: false, binDir, confDir, pluginMain: fakeMain });
    const out = execFileSync('/bin/sh', [r.wrapper, 'a b', "c'd"], { env: {}, encoding: 'utf8' });
    const seen = JSON.parse(out) as { argv: string[]; env: Record<string, string> };
    expect(seen.argv).toEqual(['a b', "c'd"]);
    expect(seen.env.PATH).toBeUndefined();
  });

  it.skipIf(!existsSync(BUILT_MAIN))('the installed plugin answers VERSION with an empty environment', () => {
    const r = installCni({ binDir, confDir, pluginMain: BUILT_MAIN });
    const res = spawnSync(r.wrapper, [], { env: { CNI_COMMAND: 'VERSION' }, input: '{"cniVersion":"1.0.0"}', encoding: 'utf8' });
    expect(res.status).toBe(0);
    expect(JSON.parse(res.stdout)).toEqual({ cniVersion: '1.0.0', supportedVersions: ['1.0.0', '1.1.0'] });
  });

  it.skipIf(!existsSync(BUILT_MAIN) || !existsSync(SHIM))('the native plugin falls back to the Node plugin when no router answers', () => {
    const r = installCni({ binDir, confDir, pluginMain: BUILT_MAIN });
    expect(r.native).toBe(true);
    expect(readFileSync(r.plugin).subarray(0, 4).toString('latin1')).toBe('\x7fELF');
    const res = spawnSync(r.plugin, [], { env: { CNI_COMMAND: 'VERSION' }, input: `{"cniVersion":"1.0.0","socket":"${join(dir, 'nobody.sock')}"}`, encoding: 'utf8' });
    expect(res.status).toBe(0);
    expect(JSON.parse(res.stdout)).toEqual({ cniVersion: '1.0.0', supportedVersions: ['1.0.0', '1.1.0'] });
  });

  it('replaces earlier files atomically and leaves no temp files', () => {
    mkdirSync(confDir, { recursive: true });
    writeFileSync(join(confDir, CONFLIST_NAME), 'old');
    installCni({ binDir, confDir, pluginMain: fakeMain, name: 'pods', socket: '/run/w.sock', mtu: 1400, dns: { nameservers: ['10.96.0.10'] }, portmap: false });
    expect(readdirSync(confDir)).toEqual([CONFLIST_NAME]);
    expect(JSON.parse(readFileSync(join(confDir, CONFLIST_NAME), 'utf8'))).toMatchObject({
      name: 'pods',
      plugins: [{ type: 'weft', socket: '/run/w.sock', mtu: 1400, dns: { nameservers: ['10.96.0.10'] } }],
    });
  });

  it('reports config files that sort before ours', () => {
    mkdirSync(confDir, { recursive: true });
    writeFileSync(join(confDir, '10-containerd-net.conflist'), '{}');
    writeFileSync(join(confDir, '00-aaa.conf'), '{}');
    expect(installCni({ binDir, confDir, pluginMain: fakeMain }).shadowedBy).toEqual(['00-aaa.conf']);
  });

  it('offers only the versions an installed portmap speaks', () => {
    mkdirSync(binDir, { recursive: true });
    const portmap = join(binDir, 'portmap');
    // It answers without reading stdin, so writing the config to it may fail (EPIPE): the answer still counts.
    writeFileSync(portmap, '#!/bin/sh\necho \'{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}\'\n');
    chmodSync(portmap, 0o755);
    const r = installCni({ shim: false, binDir, confDir, pluginMain: fakeMain });
    expect(JSON.parse(readFileSync(r.conflist, 'utf8')).cniVersions).toEqual(['1.0.0']);
  });

  it('chains bandwidth last with the bandwidth capability when asked; not by default', () => {
    const plugins = (o: Parameters<typeof conflist>[0]) => (conflist(o).plugins as { type: string; capabilities?: Record<string, boolean> }[]).map((p) => [p.type, p.capabilities]);
    const cases: [Parameters<typeof conflist>[0], unknown[]][] = [
      [{}, [['weft', undefined], ['portmap', { portMappings: true }]]],
      [{ bandwidth: true }, [['weft', undefined], ['portmap', { portMappings: true }], ['bandwidth', { bandwidth: true }]]],
      [{ bandwidth: true, portmap: false }, [['weft', undefined], ['bandwidth', { bandwidth: true }]]],
    ];
    for (const [o, want] of cases) expect(plugins(o), JSON.stringify(o)).toEqual(want);
  });

  it('offers only the versions every installed chained plugin speaks, and names chained plugins that are missing', () => {
    mkdirSync(binDir, { recursive: true });
    const answer = (name: string, versions: string[]) => {
      writeFileSync(join(binDir, name), `#!/bin/sh\necho '${JSON.stringify({ cniVersion: '1.0.0', supportedVersions: versions })}'\n`);
      chmodSync(join(binDir, name), 0o755);
    };
    let r = installCni({ shim: false, binDir, confDir, pluginMain: fakeMain, bandwidth: true });
    expect(r.chainedMissing).toEqual(['portmap', 'bandwidth']);
    answer('portmap', ['1.0.0', '1.1.0']);
    answer('bandwidth', ['0.4.0', '1.0.0']);
    r = installCni({ shim: false, binDir, confDir, pluginMain: fakeMain, bandwidth: true });
    expect(r.chainedMissing).toEqual([]);
    expect(JSON.parse(readFileSync(r.conflist, 'utf8')).cniVersions).toEqual(['1.0.0']);
    // Without bandwidth chained, its versions do not matter.
    r = installCni({ shim: false, binDir, confDir, pluginMain: fakeMain });
    expect(JSON.parse(readFileSync(r.conflist, 'utf8')).cniVersions).toEqual(['1.0.0', '1.1.0']);
  });

  it('refuses bad options, naming each', () => {
    expect(() => installCni({ binDir: 'rel', confDir, pluginMain: join(dir, 'missing.js'), name: '-x', mtu: 5, cniVersion: '0.4.0' })).toThrow(
      /binDir must be an absolute path[\s\S]*name "-x"[\s\S]*mtu[\s\S]*0.4.0[\s\S]*missing.js does not exist/,
    );
  });
});

describe('wrapper text and conflist', () => {
  it('quotes paths for the shell', () => {
    expect(shellQuote("a'b")).toBe(`'a'\\''b'`);
    expect(wrapperScript('/usr/bin/node', '/opt/weft/dist/src/cni/main.js')).toBe(
      `#!/bin/sh\n# weft CNI plugin (written by weft install; do not edit)\nexec '/usr/bin/node' '/opt/weft/dist/src/cni/main.js' "$@"\n`,
    );
  });

  it('an empty cniVersions list is left out', () => {
    expect(conflist({ cniVersions: [] })).not.toHaveProperty('cniVersions');
  });
});
