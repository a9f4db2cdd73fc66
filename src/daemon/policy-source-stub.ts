/**
 * MERGE: a stand-in for the policy sources (src/policy/file-source.ts, src/k8s/policy-source.ts,
 * the sources helper's part) so the daemon builds and runs before they exist: it never syncs, so
 * the engine writes nothing and the rules of an earlier run stay in force; status says why. The
 * daemon's `defaultPolicySource` constructs the real ones at merge, and this file goes.
 */
import type { PolicyObjectProblem, PolicySnapshot, PolicySource } from '../policy/model.js';

export class UnbuiltPolicySource implements PolicySource {
  private readonly kind: 'kubernetes' | 'file';
  private readonly where: string;

  constructor(init: { kind: 'kubernetes' | 'file'; where: string }) {
    this.kind = init.kind;
    this.where = init.where;
  }
  start(): Promise<void> {
    return Promise.resolve();
  }
  stop(): Promise<void> {
    return Promise.resolve();
  }
  snapshot(): PolicySnapshot | undefined {
    return undefined;
  }
  onChange(listener: () => void): void {
    void listener;
  }
  describe(): { kind: 'kubernetes' | 'file'; where: string; synced: boolean; problems: PolicyObjectProblem[]; error: string | undefined } {
    return { kind: this.kind, where: this.where, synced: false, problems: [], error: 'this build has no policy source yet' };
  }
}
