/**
 * Install on a host: `npm pack` of this checkout, `npm install -g --offline` of the tarball into a
 * temporary prefix (nothing downloaded, nothing compiled: the dependencies are bundled and the
 * native addon and the CNI shim are in the tarball), then `weft version` and `weft launch --help`
 * from PATH, and `systemd-analyze verify` of deploy/systemd/weft.service pointed at that prefix.
 * Needs the build (`npm run build:ts` after `npm ci`); packs with --ignore-scripts so that the
 * native addon other tests load is not rebuilt under them.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };

let dir = '';
let prefix = '';
let installLog = '';

/** Runs `weft ARGS` as an operator would: found on a PATH that holds the prefix's bin and the system's. */
function weft(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('weft', args, { encoding: 'utf8', cwd: dir, env: { PATH: `${join(prefix, 'bin')}:/usr/local/bin:/usr/bin:/bin`, HOME: dir } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'weft-install-'));
  prefix = join(dir, 'prefix');
  const env = { ...process.env, npm_config_cache: join(dir, 'npm-cache'), npm_config_update_notifier: 'false' };
  execFileSync('npm', ['pack', '--ignore-scripts', '--pack-destination', dir], { cwd: ROOT, env, stdio: 'pipe' });
  const tgz = join(dir, `weft-${PKG.version}.tgz`);
  // An empty cache and --offline: every dependency must come from the tarball itself.
  installLog = execFileSync('npm', ['install', '-g', '--offline', '--no-audit', '--no-fund', '--prefix', prefix, tgz], { cwd: dir, env, encoding: 'utf8', stdio: 'pipe' });
}, 240_000);

afterAll(() => {
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

describe('npm pack + npm install -g', () => {
  it('installs the built code, the native addon and the CNI shim, and compiles nothing', () => {
    const pkg = join(prefix, 'lib', 'node_modules', 'weft');
    for (const f of ['dist/src/cli/main.js', 'dist/build-info.json', 'build/Release/weft_native.node', 'build/weft-cni', 'deploy/systemd/weft.service'])
      expect(existsSync(join(pkg, f)), f).toBe(true);
    // The same addon bytes as built here: it was packed, not rebuilt at install time.
    expect(readFileSync(join(pkg, 'build/Release/weft_native.node')).equals(readFileSync(join(ROOT, 'build/Release/weft_native.node')))).toBe(true);
    expect(readdirSync(join(pkg, 'build')).sort()).toEqual(['Release', 'weft-cni']);
    expect(existsSync(join(pkg, 'src'))).toBe(false);
    expect(installLog).not.toMatch(/node-gyp|gyp info/);
  });

  it('`weft version` and `weft --version` from PATH print the package version', () => {
    const v = weft(['version']);
    expect(v.stderr).toBe('');
    expect(v.status).toBe(0);
    expect(v.stdout).toMatch(new RegExp(`^weft ${PKG.version.replaceAll('.', '\\.')} \\(`));
    const j = weft(['version', '--json']);
    expect(JSON.parse(j.stdout)).toMatchObject({ version: PKG.version, node: process.versions.node });
    expect(weft(['--version']).stdout).toBe(v.stdout);
  });

  it('`weft launch --help` from PATH lists the launch flags', () => {
    const h = weft(['launch', '--help']);
    expect(h.status).toBe(0);
    expect(h.stdout).toContain('Usage: weft launch');
    for (const flag of ['--name', '--peer', '--secret-file', '--ipam-range']) expect(h.stdout).toContain(flag);
  });

  it('deploy/systemd/weft.service passes `systemd-analyze verify` (ExecStart pointed at the prefix)', (ctx) => {
    const analyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
    if (analyze.status !== 0) ctx.skip(); // scripts/prereqs.sh installs it (Debian's systemd)
    const unit = readFileSync(join(ROOT, 'deploy/systemd/weft.service'), 'utf8');
    expect(unit).toContain('ExecStart=/usr/local/bin/weft launch');
    for (const line of ['Restart=on-failure', 'StateDirectory=weft', 'RuntimeDirectory=weft', 'EnvironmentFile=-/etc/default/weft', 'DeviceAllow=/dev/net/tun rw']) expect(unit).toContain(line);
    const unitDir = join(dir, 'unit');
    execFileSync('mkdir', ['-p', unitDir]);
    writeFileSync(join(unitDir, 'weft.service'), unit.replaceAll('/usr/local/bin/weft', join(prefix, 'bin', 'weft')));
    const r = spawnSync('systemd-analyze', ['verify', join(unitDir, 'weft.service')], { encoding: 'utf8' });
    expect(`${r.stdout}${r.stderr}`.trim()).toBe('');
    expect(r.status).toBe(0);
    // The env example sets WEFT_ARGS, the variable ExecStart expands.
    expect(readFileSync(join(ROOT, 'deploy/systemd/weft.env'), 'utf8')).toMatch(/^WEFT_ARGS="--name /m);
  });
});
