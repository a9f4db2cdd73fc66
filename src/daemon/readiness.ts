/**
 * What `/readyz` answers: named checks, each giving a reason while its part cannot yet do its
 * share of allocating and forwarding (the router starting, IPAM without its ranges, the pod
 * network not set up; Kubernetes mode adds its own, e.g. the API not synced). Ready when no
 * check gives a reason. Checks are read at request time, so they cost nothing in between.
 */

/** A reason while not ready, undefined when ready. */
export type ReadinessCheck = () => string | undefined;

export class Readiness {
  private readonly checks = new Map<string, ReadinessCheck>();

  /** Adds a check; a second one of the same name replaces the first. */
  add(name: string, check: ReadinessCheck): void {
    this.checks.set(name, check);
  }

  /** Each failing check as "name: reason", in the order added; empty when ready. A check that throws fails with its error. */
  reasons(): string[] {
    const out: string[] = [];
    for (const [name, check] of this.checks) {
      let reason: string | undefined;
      try {
        reason = check();
      } catch (err) {
        reason = `the check failed: ${err instanceof Error ? err.message : String(err)}`;
      }
      if (reason !== undefined) out.push(`${name}: ${reason}`);
    }
    return out;
  }
}
