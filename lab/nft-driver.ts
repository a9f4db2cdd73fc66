/**
 * Runs nftables operations through NftLib (libnftables in-process) or NftCli (the `nft` command)
 * inside a namespace a test made: `ip netns exec NS node dist/lab/nft-driver.js`, steps as JSON
 * on stdin, one result per step as JSON on stdout. So both ways run the same production code on
 * the same steps, and nothing changes outside the test's namespace.
 *
 *   { "backend": "lib" | "cli", "steps": [Step, ...] }
 *   Step: { "op": "replaceTable" | "deleteTable" | "replaceSetElements" | "counters" | "apply" | "listTable", "args": [...] }
 *       | { "parallel": [Step, ...] }      all at once; the result is the array of their results
 *       | { "guard": "start" | "stop" }    a PodGuard (bridge "weft", vxlanPort 4790) on this backend
 *       | { "guard": "attach", "containerId", "ifName", "mac", "addresses" }  (its port joins the fake bridge)
 *       | { "guard": "detach", "containerId", "ifName" }                      (its port leaves it)
 *   Result: { "ok": true, "value"?: ... } | { "ok": false, "code", "message", "detail"? }
 */
import { silentLogger } from '../src/core/logger.js';
import { systemClock } from '../src/core/clock.js';
import { hostVethName } from '../src/cni/veth.js';
import { PodGuard, type PodAllocation } from '../src/daemon/pod-guard.js';
import { NftCli } from '../src/platform/linux/nft-cli.js';
import { NftLib } from '../src/platform/linux/nft-lib.js';
import type { Nft, NftScripts } from '../src/platform/nft.js';

type Step =
  | { op: 'replaceTable' | 'deleteTable' | 'replaceSetElements' | 'counters' | 'apply' | 'listTable'; args: unknown[] }
  | { parallel: Step[] }
  | { guard: 'start' }
  | { guard: 'stop' }
  | { guard: 'attach'; containerId: string; ifName: string; mac: string; addresses: string[] }
  | { guard: 'detach'; containerId: string; ifName: string };

type Result = { ok: true; value?: unknown } | { ok: false; code: string; message: string; detail?: string };

async function main(): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  const input = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { backend: 'lib' | 'cli'; steps: Step[] };
  const nft: Nft & NftScripts = input.backend === 'lib' ? new NftLib() : new NftCli();
  const allocations: PodAllocation[] = [];
  const ports = new Set<string>();
  const guard = new PodGuard(
    {
      nft,
      netlink: { bridgePorts: () => Promise.resolve([...ports].map((name, index) => ({ name, index, mtu: 1500, up: true, master: 'weft', kind: 'veth', mac: undefined }))) },
      clock: systemClock,
      logger: silentLogger,
      allocations: () => allocations,
    },
    { bridge: 'weft', vxlanPort: 4790, reconcileMs: 3_600_000 },
  );

  const one = async (s: Step): Promise<Result> => {
    try {
      if ('parallel' in s) return { ok: true, value: await Promise.all(s.parallel.map(one)) };
      if ('guard' in s) {
        if (s.guard === 'start') await guard.start();
        else if (s.guard === 'stop') await guard.stop();
        else if (s.guard === 'attach') {
          allocations.push({ containerId: s.containerId, ifName: s.ifName, addresses: s.addresses });
          ports.add(hostVethName(s.containerId, s.ifName));
          await guard.attach(s.containerId, s.ifName, s.mac);
        } else if (s.guard === 'detach') {
          ports.delete(hostVethName(s.containerId, s.ifName));
          await guard.detach(s.containerId, s.ifName);
        }
        return { ok: true };
      }
      const fn = (nft as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[s.op]!;
      const value = await fn.apply(nft, s.args);
      return value === undefined ? { ok: true } : { ok: true, value };
    } catch (err) {
      const e = err as { code?: unknown; message?: unknown; detail?: unknown; stderr?: unknown };
      const detail = typeof e.detail === 'string' ? e.detail : typeof e.stderr === 'string' ? e.stderr : undefined;
      return { ok: false, code: String(e.code), message: String(e.message), ...(detail === undefined ? {} : { detail }) };
    }
  };

  const results: Result[] = [];
  for (const s of input.steps) results.push(await one(s));
  process.stdout.write(JSON.stringify(results));
}

void main();
