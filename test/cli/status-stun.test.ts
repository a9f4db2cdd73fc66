import { describe, expect, it } from 'vitest';
import type { EndpointsStatus } from '../../src/api/types.js';
import { formatEndpoints } from '../../src/cli/format-status.js';

describe("weft status: the STUN servers' lines", () => {
  it('says per server where it sees us, or why it failed, or that it waits', () => {
    const e: EndpointsStatus = {
      candidates: [{ endpoint: '198.18.0.201:6784', kind: 'stun' }], observed: [], nat: 'unknown', punches: [], hint: '',
      stun: [
        { server: '198.18.0.1:3478', resolved: '198.18.0.1', state: 'mapped', mapped: '198.18.0.201:6784', lastError: '', requests: 2, answers: 1 },
        { server: 'stun.example:3478', resolved: '198.18.0.9', state: 'failed', mapped: '', lastError: 'no answer from 198.18.0.9:3478 in 3 s', requests: 3, answers: 0 },
        { server: '[2001:2::1]:3478', resolved: '', state: 'waiting', mapped: '', lastError: '', requests: 0, answers: 0 },
      ],
    };
    expect(formatEndpoints(e)).toEqual([
      '  endpoints: 198.18.0.201:6784 (stun); NAT: unknown',
      '    STUN 198.18.0.1:3478: sees us at 198.18.0.201:6784; requests 2, answers 1',
      '    STUN stun.example:3478 (198.18.0.9): failed: no answer from 198.18.0.9:3478 in 3 s; requests 3, answers 0',
      '    STUN [2001:2::1]:3478: waiting; requests 0, answers 0',
    ]);
  });
});
