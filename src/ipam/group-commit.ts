/**
 * Group commit: changes are counted as they happen; `flush` resolves once a write that started
 * after the caller's last change has completed, so several operations waiting together share one
 * store write. A failed write rejects every caller waiting on it; the next flush writes again.
 */
export class GroupCommit {
  private changes = 0;
  private durable = 0;
  private inFlight: Promise<void> | undefined = undefined;
  private readonly write: () => Promise<void>;

  constructor(write: () => Promise<void>) {
    this.write = write;
  }

  /** Records a change that must reach the store. */
  mark(): void {
    this.changes++;
  }

  /** Resolves when every change marked before the call is written. */
  async flush(): Promise<void> {
    const target = this.changes;
    while (this.durable < target) {
      this.inFlight ??= this.run();
      await this.inFlight;
    }
  }

  private async run(): Promise<void> {
    const covers = this.changes;
    try {
      await this.write();
      this.durable = Math.max(this.durable, covers);
    } finally {
      this.inFlight = undefined;
    }
  }
}
