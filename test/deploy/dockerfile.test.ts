/**
 * deploy/Dockerfile, read as text (no image can be built here: no registry to pull node:20 from).
 * It must build what `npm run build` builds, ship every file the code loads at run time (from
 * the package root it finds by binding.gyp), install the tools and libraries the router runs,
 * and start the CLI the DaemonSet's args are subcommands of. The runtime stage's files, assembled
 * from this checkout by its COPY lines, run the CLI and the init container's install.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { describe, expect, it } from 'vitest';
import { deployConflist, deployPodSpec } from '../../lab/deploy-manifests.js';

const text = readFileSync('deploy/Dockerfile', 'utf8');
/** Instructions, continuation lines joined, comments dropped. */
const lines = text
  .replace(/\\\n/g, ' ')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l !== '' && !l.startsWith('#'));
const froms = lines.map((l, i) => [l, i] as const).filter(([l]) => l.startsWith('FROM '));
const buildStage = lines.slice(froms[0]![1], froms[1]![1]);
const runtimeStage = lines.slice(froms[1]![1]);
const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> };

describe('deploy/Dockerfile', () => {
  it('two stages on Node 20 Debian: a build stage and a slim runtime', () => {
    expect(froms.map(([l]) => l)).toEqual(['FROM node:20-bookworm AS build', 'FROM node:20-bookworm-slim']);
  });

  it("builds the addon against the image's Node headers, the plugin binary as npm run build does, and the TypeScript", () => {
    const run = buildStage.filter((l) => l.startsWith('RUN ')).join(' ');
    expect(run).toMatch(/node-gyp(\.js)? rebuild --nodedir=\/usr\/local/);
    // The shim's compile line is package.json's, word for word, but linked statically (it runs
    // on the host, whatever its C library).
    const cc = /cc -O2 [^&]*weft-cni\.c/.exec(pkg.scripts['build:native']!)![0];
    expect(run).toContain(cc.replace(' -o ', ' -static -o '));
    expect(run).toContain(pkg.scripts['build:ts']!.replace(/^tsc/, 'npx tsc'));
    expect(run).toContain('npm prune --omit=dev');
  });

  it('every file the build stage copies exists in the repository', () => {
    for (const l of buildStage.filter((x) => x.startsWith('COPY '))) {
      const words = l.split(/\s+/).slice(1);
      for (const src of words.slice(0, -1)) expect(existsSync(src), src).toBe(true);
    }
  });

  it('the runtime has what the code loads from the package root at run time', () => {
    const copied = runtimeStage
      .filter((l) => l.startsWith('COPY --from=build '))
      .flatMap((l) => {
        const words = l.split(/\s+/).slice(2);
        const dest = words.at(-1)!;
        const at = posix.join('/usr/lib/weft', dest); // relative to the WORKDIR
        return words.slice(0, -1).map((s) => (dest.endsWith('/') ? posix.join(at, posix.basename(s)) : at));
      });
    expect(runtimeStage).toContain('WORKDIR /usr/lib/weft');
    // binding.gyp: src/core/paths.ts packageRoot; the addon: src/platform/linux/native.ts; the
    // plugin binary: src/cni/install.ts (its default shim); the code and its packages.
    for (const need of ['binding.gyp', 'package.json', 'node_modules', 'dist/src', 'build/Release/weft_native.node', 'build/weft-cni']) {
      expect(copied, need).toContain(`/usr/lib/weft/${need}`);
    }
    expect(readFileSync('src/core/paths.ts', 'utf8')).toContain("'binding.gyp'");
    expect(readFileSync('src/platform/linux/native.ts', 'utf8')).toContain("'build', 'Release', 'weft_native.node'");
    expect(readFileSync('src/cni/install.ts', 'utf8')).toContain("'build', 'weft-cni'");
  });

  it('installs the commands and the library the router runs or loads', () => {
    const apt = runtimeStage.find((l) => l.includes('apt-get install'))!;
    // ip and bridge (iproute2), nft and libnftables.so.1 (dlopen in native/nft.c), nsenter.
    for (const p of ['iproute2', 'nftables', 'libnftables1', 'util-linux']) expect(apt.split(/\s+/), p).toContain(p);
    expect(readFileSync('src/platform/linux/native/nft.c', 'utf8')).toContain('"libnftables.so.1"');
    expect(apt).toContain('--no-install-recommends');
  });

  it('starts the weft CLI, whose subcommands the DaemonSet runs', () => {
    expect(runtimeStage).toContain('ENTRYPOINT ["node", "/usr/lib/weft/dist/src/cli/main.js"]');
    const spec = deployPodSpec();
    expect((spec.initContainers ?? []).map((c) => c.args?.[0])).toEqual(['cni-install']);
    expect(spec.containers.map((c) => c.args?.[0])).toEqual(['launch']);
    for (const c of [...spec.containers, ...(spec.initContainers ?? [])]) expect(c.command, c.name).toBeUndefined();
  });
});

describe("the runtime stage's files", () => {
  // Needs the build (npm test builds first; `npm run build` before running this file alone).
  it('are enough for the CLI to run from them: launch --help, and cni-install as the init container runs it', () => {
    expect(['dist/src/cli/main.js', 'build/weft-cni', 'build/Release/weft_native.node'].filter((f) => !existsSync(f)), 'the build (npm run build)').toEqual([]);
    const root = mkdtempSync(join(tmpdir(), 'weft-image-'));
    try {
      // The runtime stage's COPY lines, from this checkout (the build stage's /src/weft) into root.
      let workdir = '/';
      for (const l of runtimeStage) {
        if (l.startsWith('WORKDIR ')) workdir = l.slice('WORKDIR '.length);
        if (!l.startsWith('COPY --from=build ')) continue;
        const words = l.split(/\s+/).slice(2);
        const dest = posix.join(workdir, words.at(-1)!);
        for (const src of words.slice(0, -1)) {
          const from = posix.relative('/src/weft', src);
          const to = join(root, words.at(-1)!.endsWith('/') ? posix.join(dest, posix.basename(src)) : dest);
          mkdirSync(join(to, '..'), { recursive: true });
          // node_modules: this checkout's (the image's is the same, pruned of devDependencies).
          if (from === 'node_modules') symlinkSync(join(process.cwd(), 'node_modules'), to);
          else cpSync(from, to, { recursive: true });
        }
      }
      const entry = /^ENTRYPOINT \["node", "(.+)"\]$/.exec(runtimeStage.find((l) => l.startsWith('ENTRYPOINT'))!)![1]!;
      const main = join(root, entry);
      expect(execFileSync(process.execPath, [main, 'launch', '--help'], { encoding: 'utf8' })).toContain('--kubernetes');
      const conflist = join(root, 'conflist.json');
      writeFileSync(conflist, JSON.stringify(deployConflist()));
      execFileSync(process.execPath, [main, 'cni-install', '--bin-dir', join(root, 'bin'), '--conf-dir', join(root, 'net.d'), '--runtime-dir', join(root, 'opt'), '--conflist', conflist], { stdio: 'pipe' });
      expect(readdirSync(join(root, 'bin')).sort()).toEqual(['weft', 'weft-node']);
      expect(readFileSync(join(root, 'bin', 'weft')).equals(readFileSync(join(root, 'usr', 'lib', 'weft', 'build', 'weft-cni')))).toBe(true);
      // The Node fallback answers from its copy, which holds nothing of this checkout.
      const version = execFileSync(join(root, 'bin', 'weft-node'), [], { env: { CNI_COMMAND: 'VERSION' }, input: '{"cniVersion":"1.1.0"}', encoding: 'utf8' });
      expect(JSON.parse(version)).toEqual({ cniVersion: '1.1.0', supportedVersions: ['1.0.0', '1.1.0'] });
      expect(readFileSync(join(root, 'bin', 'weft-node'), 'utf8')).not.toContain(process.cwd());
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
