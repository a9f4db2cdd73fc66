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

/** 0000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z, the range isoTime formats itself. */
const ISO_MIN = -62167219200000;
const ISO_MAX = 253402300799999;
const DAY_MS = 86400000;

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/**
 * `new Date(ms).toISOString()` without a Date: V8 formats a Date through its date cache, whose
 * first use loads ICU's time-zone data (0.6 MB of the Node binary's pages resident, 2026-12-04),
 * which a router needs for nothing else. Days to a civil date as in Howard Hinnant's
 * `civil_from_days`. Outside years 0–9999 (and for invalid times: RangeError) it is Date's own.
 */
export function isoTime(ms: number): string {
  const t = Math.trunc(ms);
  if (!(t >= ISO_MIN && t <= ISO_MAX)) return new Date(ms).toISOString();
  const days = Math.floor(t / DAY_MS);
  const inDay = t - days * DAY_MS;
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  const h = Math.floor(inDay / 3600000);
  const min = Math.floor(inDay / 60000) % 60;
  const s = Math.floor(inDay / 1000) % 60;
  return `${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)}T${pad(h, 2)}:${pad(min, 2)}:${pad(s, 2)}.${pad(inDay % 1000, 3)}Z`;
}
