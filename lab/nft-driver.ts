/**
 * Runs nftables operations through NftLib (libnftables in-process) or NftCli (the `nft` command)
 * inside a namespace a test made: `ip netns exec NS node dist/lab/nft-driver.js`, steps as JSON
 * on stdin, one result per step as JSON on stdout. So both ways run the same production code on
 * the same steps, and nothing changes outside the test's namespace.
 *
 *   { "backend": "lib" | "cli", "steps": [Step, ...] }
 *   Step: { "op": "replaceTable" | "deleteTable" | "replaceSetElements" | "counters" | "apply" | "listTable", "args": [...] }
 *       | { "parallel": [Step, ...] }      all at once; the result is the array of their results
 *   Result: { "ok": true, "value"?: ... } | { "ok": false, "code", "message", "detail"? }
 */
import { NftCli } from '../src/platform/linux/nft-cli.js';
import { NftLib } from '../src/platform/linux/nft-lib.js';
import type { Nft, NftScripts } from '../src/platform/nft.js';

type Step =
  | { op: 'replaceTable' | 'deleteTable' | 'replaceSetElements' | 'counters' | 'apply' | 'listTable'; args: unknown[] }
  | { parallel: Step[] };

type Result = { ok: true; value?: unknown } | { ok: false; code: string; message: string; detail?: string };

async function main(): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  const input = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { backend: 'lib' | 'cli'; steps: Step[] };
  const nft: Nft & NftScripts = input.backend === 'lib' ? new NftLib() : new NftCli();

  const one = async (s: Step): Promise<Result> => {
    try {
      if ('parallel' in s) return { ok: true, value: await Promise.all(s.parallel.map(one)) };
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
