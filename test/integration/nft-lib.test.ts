/**
 * NftLib (libnftables in the router's process) against NftCli (the `nft` command), on the real
 * kernel: the same steps, each way in a namespace of its own made for this test (the driver,
 * lab/nft-driver.ts, runs inside it), give the same answers and leave the same tables; errors
 * carry nft's message; calls made at once each stay one transaction; and the pod guard's scripts
 * (its whole table, pods added and removed) leave the same table through either. The guard's own
 * flow on NftLib runs in test/security/net/pods-spoofing.test.ts (the router uses NftLib).
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimPrefix } from '../../lab/lab-config.js';
import { execIn } from '../../lab/lab-process.js';
import { deleteNamespace, releasePrefix } from '../../lab/registry.js';
import { packageRoot } from '../../src/core/paths.js';
import { podAddScript, podRemoveScript, syncScript, type GuardedPod } from '../../src/daemon/pod-guard-rules.js';
import { run } from '../../src/platform/linux/run.js';
import { normalize } from './nft-json.js';

const isRoot = process.getuid?.() === 0;

type Result = { ok: true; value?: unknown } | { ok: false; code: string; message: string; detail?: string };

/** nft's message without the name it gives the script ("/dev/stdin" for the command, "script" in-process). */
function words(detail: string | undefined): string {
  return (detail ?? '').replace(/^(\/dev\/stdin|script):/gm, 'SCRIPT:').trim();
}

describe.skipIf(!isRoot)('nftables in-process (NftLib) and through the nft command (NftCli) do the same', () => {
  let prefix: string;
  const ns = { lib: '', cli: '' };
  let table: string;
  const results: Record<'lib' | 'cli', Result[]> = { lib: [], cli: [] };
  const listed: Record<'lib' | 'cli', unknown> = { lib: undefined, cli: undefined };
  let hostTablesBefore: string;

  const pod = (i: number): GuardedPod => ({ port: `vw00000000000${i}`, mac: `02:aa:00:00:00:0${i}`, ipv4: [`10.32.0.${i}`], ipv6: [`fd00::${i}`, `fe80::aa:ff:fe00:${i}`] });
  const apply = (script: string) => ({ op: 'apply', args: [script] });

  function steps(): unknown[] {
    const t = table;
    const body = ['set s { type ipv4_addr; }', 'counter c { }', 'chain input { type filter hook input priority 0; policy accept; ip saddr @s counter name "c" accept; }'].join('\n');
    const adds = Array.from({ length: 16 }, (_, i) => ({ op: 'apply', args: [`add element inet ${t} s { 10.1.${i}.1 }\nadd element inet ${t} s { 10.1.${i}.2 }\n`] }));
    return [
      /* 0 */ { op: 'replaceTable', args: ['inet', t, body] },
      /* 1 */ { op: 'replaceSetElements', args: ['inet', t, 's', ['10.0.0.1', '10.0.0.2']] },
      /* 2 */ { op: 'apply', args: [`add element inet ${t} s { 10.0.0.3 }\nadd counter inet ${t} d\n`] },
      /* 3 */ { op: 'listTable', args: ['inet', t] },
      /* 4 */ { op: 'counters', args: [] },
      /* 5 */ { op: 'listTable', args: ['inet', `${t}_missing`] },
      /* 6: the second line fails, so the first does not happen either */
      /* 6 */ { op: 'apply', args: [`add element inet ${t} s { 10.9.9.9 }\nadd element inet ${t} nope { 10.9.9.8 }\n`] },
      /* 7 */ { op: 'replaceSetElements', args: ['inet', t, 'nope', ['10.0.0.1']] },
      /* 8: at once, one of them failing in the middle */
      /* 8 */ { parallel: [...adds.slice(0, 8), { op: 'apply', args: [`add element inet ${t} s { 10.2.0.1 }\nadd element inet ${t} s { 10.2.0.300 }\n`] }, ...adds.slice(8)] },
      /* 9 */ { op: 'listTable', args: ['inet', t] },
      /* 10 */ { op: 'replaceTable', args: ['inet', t, 'set s { type ipv4_addr; elements = { 10.3.0.1 } }'] },
      /* 11 */ { op: 'listTable', args: ['inet', t] },
      /* 12 */ { op: 'deleteTable', args: ['inet', t] },
      /* 13 */ { op: 'deleteTable', args: ['inet', t] },
      /* 14 */ { op: 'listTable', args: ['inet', t] },
      /* 15 */ apply(syncScript({ vxlanPort: 4790 }, [], [])),
      /* 16 */ apply(podAddScript(pod(1))),
      /* 17 */ apply(podAddScript(pod(2))),
      /* 18 */ apply(podRemoveScript(pod(1))),
      /* 19 */ { parallel: [apply(podAddScript(pod(3))), apply(podAddScript(pod(4))), apply(podRemoveScript(pod(2)))] },
      /* 20 */ apply(syncScript({ vxlanPort: 4790 }, [pod(3), pod(4), pod(5)], [])),
    ];
  }

  beforeAll(async () => {
    prefix = await claimPrefix(undefined);
    ns.lib = `${prefix}-nftlib`;
    ns.cli = `${prefix}-nftcli`;
    table = `${prefix}_t`;
    hostTablesBefore = await run('nft', ['list', 'tables']);
    const driver = join(packageRoot(import.meta.url), 'dist', 'lab', 'nft-driver.js');
    for (const backend of ['lib', 'cli'] as const) {
      await run('ip', ['netns', 'add', ns[backend]]);
      const out = await execIn(ns[backend], [process.execPath, driver], { input: JSON.stringify({ backend, steps: steps() }), timeoutMs: 120_000 });
      results[backend] = JSON.parse(out.stdout) as Result[];
      listed[backend] = JSON.parse((await execIn(ns[backend], ['nft', '-j', 'list', 'ruleset'])).stdout);
    }
  });

  afterAll(async () => {
    if (prefix === undefined) return;
    for (const n of [ns.lib, ns.cli]) if (n !== '') await deleteNamespace(n);
    releasePrefix(prefix);
  });

  const value = (b: 'lib' | 'cli', i: number) => {
    const r = results[b][i]!;
    expect(r, `step ${i} (${b})`).toMatchObject({ ok: true });
    return normalize((r as { value?: unknown }).value);
  };

  it('every change that should succeed did, both ways', () => {
    for (const b of ['lib', 'cli'] as const) {
      for (const i of [0, 1, 2, 3, 4, 5, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 20]) expect(results[b][i], `step ${i} (${b})`).toMatchObject({ ok: true });
    }
  });

  it('reads give the same answers: the table, the counters, a missing table (undefined)', () => {
    for (const i of [3, 4, 9, 11]) expect(value('lib', i), `step ${i}`).toEqual(value('cli', i));
    const elems = (v: unknown) => ((v as { set?: { name: string; elem?: unknown[] } }[]).find((x) => x.set?.name === 's')?.set?.elem ?? []) as unknown[];
    expect(elems(value('lib', 3))).toEqual(['10.0.0.1', '10.0.0.2', '10.0.0.3']);
    expect(value('lib', 4)).toEqual([
      { family: 'inet', table, name: 'c', packets: 0, bytes: 0 },
      { family: 'inet', table, name: 'd', packets: 0, bytes: 0 },
    ]);
    expect(results.lib[5]).toEqual({ ok: true });
    expect(elems(value('lib', 11))).toEqual(['10.3.0.1']);
    expect(results.lib[14]).toEqual({ ok: true }); // deleted twice, then missing
  });

  it("a refused script is an error carrying nft's message, and changes nothing", () => {
    for (const i of [6, 7]) {
      const lib = results.lib[i]!;
      const cli = results.cli[i]!;
      expect(lib, `step ${i}`).toMatchObject({ ok: false, code: 'ERR_NFT' });
      expect(cli, `step ${i}`).toMatchObject({ ok: false, code: 'ERR_COMMAND' });
      if (lib.ok || cli.ok) continue;
      expect(words(lib.detail)).toEqual(words(cli.detail));
      expect(lib.message).toContain(lib.detail!.trim());
    }
    const six = results.lib[6] as { detail: string };
    expect(six.detail).toMatch(/^script:2:\d+-\d+: Error: No such file or directory\nadd element inet \S+ nope \{ 10\.9\.9\.8 \}/);
    expect(JSON.stringify(value('lib', 9))).not.toContain('10.9.9.9');
  });

  it('calls made at once each stay one transaction: all but the refused one are in, nothing of that one', () => {
    for (const b of ['lib', 'cli'] as const) {
      const all = value(b, 8) as Result[];
      expect(all.map((r) => r.ok)).toEqual([...Array<boolean>(8).fill(true), false, ...Array<boolean>(8).fill(true)]);
      const s = JSON.stringify(value(b, 9));
      for (let i = 0; i < 16; i++) expect(s).toContain(`"10.1.${i}.2"`);
      expect(s).not.toContain('10.2.0.1');
    }
  });

  it("the pod guard's scripts leave the same table through either, with the pods they name", () => {
    for (const i of [19]) {
      for (const b of ['lib', 'cli'] as const) expect((value(b, i) as Result[]).every((r) => r.ok), `step ${i} (${b})`).toBe(true);
    }
    expect(normalize(listed.lib)).toEqual(normalize(listed.cli));
    const pods = (listed.lib as { nftables: { set?: { table: string; name: string; elem?: unknown[] } }[] }).nftables.find((x) => x.set?.table === 'weft-pods' && x.set.name === 'pods');
    expect(pods?.set?.elem).toEqual(['vw000000000003', 'vw000000000004', 'vw000000000005']);
    expect(JSON.stringify(listed.lib)).not.toContain(table); // deleted at step 12
  });

  it('changed nothing outside its namespaces', async () => {
    expect(await run('nft', ['list', 'tables'])).toEqual(hostTablesBefore);
    expect(hostTablesBefore).not.toContain(table);
  });
});
