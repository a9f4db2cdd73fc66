/**
 * Time, injected. `now()` is monotonic milliseconds (for expiry and intervals); `wallNow()` is
 * the Unix epoch in milliseconds (for display and session stamps). Timers are coarse: one per
 * component, never one per packet.
 */
export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  now(): number;
  wallNow(): number;
  setInterval(fn: () => void, ms: number): TimerHandle;
  setTimeout(fn: () => void, ms: number): TimerHandle;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  wallNow: () => Date.now(),
  setInterval(fn, ms) {
    const t = setInterval(fn, ms);
    t.unref();
    return { cancel: () => clearInterval(t) };
  },
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
};
