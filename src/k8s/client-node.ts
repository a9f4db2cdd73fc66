/**
 * The one place that loads `@kubernetes/client-node`, and only when first asked. The library costs
 * about 70 MB of resident memory and 0.6 s of start-up (measured with `bench/rss-probe.ts`: a router
 * that imported it at start sat at 124–133 MB idle), so a router that is not in Kubernetes mode must
 * never load it. Everything else in src/ imports only its types (`import type`, erased at build);
 * values (classes, helpers) come from `clientNode()` at the moment they are used.
 *
 * The package is ESM; Node 20's require(esm) loads it synchronously into the same module cache as
 * `import`, so classes are identical to the ones tests import (instanceof works across both).
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

/** The library if something has loaded it already, else undefined (nothing from it can exist yet). */
export function clientNodeIfLoaded(): ClientNode | undefined {
  return loaded;
}
