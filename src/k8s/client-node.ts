/**
 * The one place that loads `@kubernetes/client-node`, and only when first asked. The library costs
 * a router about 50 MB of resident memory and 0.5 s of start-up (importing the daemon: 131 → 73 MB,
 * 850 → 320 ms without it; a router under a TCP stream in bench/sleeve-probe.ts: 143 → 90 MB), so a
 * router that is not in Kubernetes mode must never load it. Everything else in src/ imports only
 * its types (`import type`, erased at build); values (classes, helpers) come from `clientNode()`
 * at the moment they are used.
 *
 * The package is ESM. The daemon loads it with `import()` (`loadClientNode`) before it starts
 * anything of Kubernetes mode, which works on every Node the package allows; `clientNode()` then
 * returns that module. Called first (tests, tools), it loads it synchronously through require(esm)
 * (Node ≥ 20.19), into the same module cache as `import`, so classes are identical either way.
 */
import { createRequire } from 'node:module';
import type * as ClientNodeModule from '@kubernetes/client-node';

type ClientNode = typeof ClientNodeModule;

let loaded: ClientNode | undefined;

/** The library, loaded on first call. */
export function clientNode(): ClientNode {
  loaded ??= createRequire(import.meta.url)('@kubernetes/client-node') as ClientNode;
  return loaded;
}

/** Loads the library with import() (once); the daemon awaits this before Kubernetes mode starts. */
export async function loadClientNode(): Promise<ClientNode> {
  loaded ??= await import('@kubernetes/client-node');
  return loaded;
}

/** The library if something has loaded it already, else undefined (nothing from it can exist yet). */
export function clientNodeIfLoaded(): ClientNode | undefined {
  return loaded;
}
