import type { IoCounters } from '../tap.js';

/** Reads the addon's stats Float64Array (layout fixed by the ST_* enum in native/handles.h). */
export function readCounters(s: Float64Array): IoCounters {
  return {
    rxBatches: s[0]!,
    rxPackets: s[1]!,
    rxBytes: s[2]!,
    rxErrors: s[3]!,
    lastErrno: s[4]!,
    txPackets: s[5]!,
    txBytes: s[6]!,
    txErrors: s[7]!,
    txDropped: s[8]!,
    gsoFallbacks: s[9]!,
    truncated: s[10]!,
    pollErrors: s[11]!,
    spinHits: s[12]!,
    txIovLimit: s[13]!,
    rxCalls: s[14]!,
  };
}
