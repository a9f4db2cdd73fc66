/**
 * `weft launch --config FILE` in a 2-node lab: every launch option of both routers comes from a
 * YAML file (relative secret file included), router n2's file names it wrongly and a `--name` flag
 * overrides it; pods ping across. `weft config check` on the same files through the built CLI.
 */
import { spawnSync } from 'node:child_process';
import { basename, join } from 'node:path';
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WeftCluster, ping } from '../../lab/index.js';
import { configYaml } from '../../src/daemon/config-file.js';
import { fileOptions } from '../../src/daemon/config-schema.js';
import type { RawConfig } from '../../src/daemon/options.js';

const CLI = join(process.cwd(), 'dist', 'src', 'cli', 'main.js');

/** `weft launch` flags as a raw config: each `--flag value` (or switch) by its option key. */
function flagsToRaw(args: string[]): RawConfig {
  const raw: Record<string, unknown> = {};
  for (let k = 0; k < args.length; k++) {
    const option = fileOptions().find((o) => o.row.flag === args[k]);
    if (option === undefined) throw new Error(`not a launch flag: ${args[k]}`);
    if (option.row.check.kind === 'switch') {
      raw[option.key] = option.row.default !== true;
      continue;
    }
    const value = args[++k]!;
    raw[option.key] = option.row.repeatable === undefined ? value : [...((raw[option.key] as string[] | undefined) ?? []), value];
  }
  return raw as RawConfig;
}

function weft(args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('two routers launched from config files', () => {
  let c: WeftCluster;
  const files: string[] = [];
  beforeAll(async () => {
    c = await WeftCluster.start({
      nodes: 2,
      prefix: 'wcfg',
      launchArgsOf: (i, args, dir) => {
        const raw = flagsToRaw(args.slice(1));
        // The secret file by a path relative to the config file, as an operator would write it.
        raw.secretFile = basename(raw.secretFile!);
        // n2's file names it wrongly: the --name flag given with --config wins.
        if (i === 1) raw.name = 'from-the-file';
        const file = join(dir, `n${i + 1}.yaml`);
        writeFileSync(file, `# router n${i + 1}\n${configYaml(raw)}`);
        files.push(file);
        return ['launch', '--config', file, ...(i === 1 ? ['--name', 'n2'] : [])];
      },
    });
    await c.waitEstablished();
  });
  afterAll(async () => {
    await c?.destroy();
  });

  it('each router runs with nothing but --config on its command line (n2: and --name)', () => {
    expect(c.routers[0]!.args).toEqual(['launch', '--config', files[0]]);
    expect(c.routers[1]!.args).toEqual(['launch', '--config', files[1], '--name', 'n2']);
    const text = readFileSync(files[1]!, 'utf8');
    expect(text).toContain('name: from-the-file');
    expect(text).toMatch(/^secret-file: secret-2$/m);
    expect(text).toMatch(/^peer:\n {2}- 198\.18\.0\.1:6784$/m);
  });

  it('pods ping each other both ways', async () => {
    const [a, b] = c.pods;
    expect((await ping(c.lab, a!.ns, b!.ipv4!, { count: 3, intervalS: 0.1 })).received).toBe(3);
    expect((await ping(c.lab, b!.ns, a!.ipv4!, { count: 3, intervalS: 0.1 })).received).toBe(3);
  });

  it('the options came from the files, and the flag over the file', async () => {
    const s1 = await c.status(0);
    const s2 = await c.status(1);
    expect(s1.nickname).toBe('n1');
    expect(s2.nickname).toBe('n2');
    expect(s1.peers.map((p) => p.nickname)).toEqual(['n2']);
    expect(s1.peers[0]!.state).toBe('established');
    // encrypted: the secret file (relative to the config file) was found and read
    expect(s1.mode.encryption).toBe('chacha20-poly1305');
  });

  it('weft config check: the files are valid; a bad one is refused with its line, exit 2', () => {
    const ok = weft(['config', 'check', files[0]!]);
    expect(ok.code).toBe(0);
    expect(ok.out).toContain(`${files[0]}: valid (router "n1", listening on 198.18.0.1:6784, 1 peer(s))`);
    const bad = join(c.dir, 'bad.yaml');
    writeFileSync(bad, 'name: n9\nsecret-file: secret-1\nhearbeat-ms: 300\n');
    const r = weft(['config', 'check', bad]);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`${bad}:3: hearbeat-ms: unknown option; did you mean "heartbeat-ms"?`);
    const launch = weft(['launch', '--config', bad]);
    expect(launch.code).toBe(2);
    expect(launch.err).toContain(`${bad}:3: hearbeat-ms`);
  });
});
