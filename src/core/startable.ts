/** Lifecycle of a component. The daemon starts components in order and stops them in reverse. */
export interface Startable {
  start(): Promise<void> | void;
  stop(): Promise<void> | void;
}

/**
 * Starts `components` in order; if one fails, stops those already started (in reverse) and
 * rethrows the failure.
 */
export async function startAll(components: readonly Startable[]): Promise<void> {
  const started: Startable[] = [];
  try {
    for (const c of components) {
      await c.start();
      started.push(c);
    }
  } catch (err) {
    await stopAll(started);
    throw err;
  }
}

/** Stops `components` in reverse order; every stop runs even when an earlier one throws. */
export async function stopAll(components: readonly Startable[]): Promise<unknown[]> {
  const failures: unknown[] = [];
  for (let i = components.length - 1; i >= 0; i--) {
    try {
      await components[i]!.stop();
    } catch (err) {
      failures.push(err);
    }
  }
  return failures;
}
