import { describe, expect, it } from 'vitest';
import { NftError } from '../../src/platform/errors.js';
import { loadNative } from '../../src/platform/linux/native.js';
import { NftCli } from '../../src/platform/linux/nft-cli.js';
import { NftLib, openNft, type NftNative, type NftRunResult } from '../../src/platform/linux/nft-lib.js';
import { recordingLogger } from '../fakes/recording-logger.js';

interface Call {
  script: string;
  json: boolean;
  answer(r: Partial<NftRunResult>): void;
}

/** The addon's nftRun, answering only when the test says so. */
class FakeNative implements NftNative {
  readonly calls: Call[] = [];
  /** Answers every call at once with this, when set. */
  auto: Partial<NftRunResult> | undefined;

  nftRun(script: string, json: boolean, cb: (r: NftRunResult) => void): void {
    const answer = (r: Partial<NftRunResult>) => cb({ loaded: true, ok: true, rc: 0, output: '', error: '', ...r });
    this.calls.push({ script, json, answer });
    if (this.auto !== undefined) answer(this.auto);
  }
}

const LIST = JSON.stringify({ nftables: [{ metainfo: { version: '1.0.6' } }, { table: { family: 'bridge', name: 'weft-pods', handle: 3 } }] });
const COUNTERS = JSON.stringify({ nftables: [{ metainfo: {} }, { counter: { family: 'inet', table: 't', name: 'c', packets: 4, bytes: 400 } }, { table: {} }] });
const MISSING = 'script:1:23-31: Error: No such file or directory\nlist table bridge weft-pods\n                  ^^^^^^^^^\n';

describe('NftLib: one transaction per call, as NftCli sends it', () => {
  it.each([
    ['replaceTable', (n: NftLib) => n.replaceTable('inet', 'weft-nat', 'chain c { }'), 'add table inet weft-nat\ndelete table inet weft-nat\ntable inet weft-nat {\nchain c { }\n}\n', false],
    ['deleteTable', (n: NftLib) => n.deleteTable('bridge', 'weft-pods'), 'add table bridge weft-pods\ndelete table bridge weft-pods\n', false],
    ['replaceSetElements', (n: NftLib) => n.replaceSetElements('ip', 't', 's', ['10.0.0.1', '10.0.0.2']), 'flush set ip t s\nadd element ip t s { 10.0.0.1, 10.0.0.2 }\n', false],
    ['replaceSetElements (none)', (n: NftLib) => n.replaceSetElements('ip', 't', 's', []), 'flush set ip t s\n', false],
    ['apply', (n: NftLib) => n.apply('add element bridge weft-pods pods { "vw0123456789ab" }\n'), 'add element bridge weft-pods pods { "vw0123456789ab" }\n', false],
    ['listTable', (n: NftLib) => n.listTable('bridge', 'weft-pods'), 'list table bridge weft-pods', true],
    ['counters', (n: NftLib) => n.counters(), 'list counters', true],
  ] as const)('%s', async (_name, op, script, json) => {
    const native = new FakeNative();
    native.auto = { output: json ? LIST : '' };
    await op(new NftLib({ native }));
    expect(native.calls.map((c) => [c.script, c.json])).toEqual([[script, json]]);
  });

  it('reads a listed table and the counters from the JSON output', async () => {
    const native = new FakeNative();
    const nft = new NftLib({ native });
    native.auto = { output: LIST };
    expect(await nft.listTable('bridge', 'weft-pods')).toEqual([{ metainfo: { version: '1.0.6' } }, { table: { family: 'bridge', name: 'weft-pods', handle: 3 } }]);
    native.auto = { output: COUNTERS };
    expect(await nft.counters()).toEqual([{ family: 'inet', table: 't', name: 'c', packets: 4, bytes: 400 }]);
  });

  it('a table that does not exist lists as undefined; any other refusal is an error', async () => {
    const native = new FakeNative();
    const nft = new NftLib({ native });
    native.auto = { ok: false, rc: -1, error: MISSING };
    expect(await nft.listTable('bridge', 'weft-pods')).toBeUndefined();
    native.auto = { ok: false, rc: -1, error: 'script:1:1-4: Error: Operation not permitted\n' };
    await expect(nft.listTable('bridge', 'weft-pods')).rejects.toMatchObject({ code: 'ERR_NFT', message: expect.stringMatching(/^listing table bridge weft-pods: .*Operation not permitted/) });
  });

  it.each([
    ['a refused script: ERR_NFT with nft message', { ok: false, rc: -1, error: 'script:2:20-23: Error: No such file or directory\nadd element inet t nope { 1.2.3.5 }\n' }, 'ERR_NFT', /^nftables refused the transaction: script:2:20-23: Error: No such file or directory\nadd element inet t nope/],
    ['a refusal without words', { ok: false, rc: 1, error: '' }, 'ERR_NFT', /nft returned 1 without a message/],
    ['no library', { loaded: false, ok: false, rc: -1, error: 'cannot load libnftables.so.1: cannot open shared object file' }, 'ERR_NFT_UNAVAILABLE', /^libnftables cannot be used: cannot load libnftables\.so\.1/],
  ] as const)('%s', async (_name, answer, code, message) => {
    const native = new FakeNative();
    native.auto = answer;
    const err = await new NftLib({ native }).apply('add element inet t nope { 1.2.3.5 }\n').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NftError);
    expect(err).toMatchObject({ code, detail: answer.error === '' ? expect.any(String) : answer.error });
    expect((err as Error).message).toMatch(message);
  });

  it('runs one call at a time, in the order made, a failure not stopping the next', async () => {
    const native = new FakeNative();
    const nft = new NftLib({ native });
    const done: string[] = [];
    const a = nft.apply('a\n').then(
      (): void => void done.push('a'),
      (): void => void done.push('a failed'),
    );
    const b = nft.listTable('inet', 'b').then((t): void => void done.push(`b ${JSON.stringify(t)}`));
    const c = nft.apply('c\n').then((): void => void done.push('c'));
    await Promise.resolve();
    await Promise.resolve();
    expect(native.calls.map((x) => x.script)).toEqual(['a\n']);
    native.calls[0]!.answer({ ok: false, rc: -1, error: 'Error: no' });
    await a;
    await new Promise((r) => setImmediate(r));
    expect(native.calls.map((x) => x.script)).toEqual(['a\n', 'list table inet b']);
    native.calls[1]!.answer({ output: LIST });
    await b;
    await new Promise((r) => setImmediate(r));
    expect(native.calls).toHaveLength(3);
    native.calls[2]!.answer({});
    await c;
    expect(done).toEqual(['a failed', `b ${JSON.stringify(JSON.parse(LIST).nftables)}`, 'c']);
  });
});

describe('openNft: libnftables when it can be used, else the nft command', () => {
  it('uses the library when it loads, and says so once', async () => {
    const native = new FakeNative();
    native.auto = {};
    const { logger, lines } = recordingLogger();
    const { nft, backend } = await openNft({ native, logger });
    expect(backend).toBe('libnftables');
    expect(nft).toBeInstanceOf(NftLib);
    expect(native.calls.map((c) => c.script)).toEqual(['']);
    expect(lines.map((l) => [l.level, l.msg])).toEqual([['info', 'nftables changes run in-process (libnftables)']]);
  });

  it('falls back to the command when the library cannot be loaded, and says why once', async () => {
    const native = new FakeNative();
    native.auto = { loaded: false, ok: false, rc: -1, error: 'cannot load libnftables.so.1: not found' };
    const { logger, lines } = recordingLogger();
    const { nft, backend } = await openNft({ native, logger });
    expect(backend).toBe('nft');
    expect(nft).toBeInstanceOf(NftCli);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'warn', msg: 'libnftables cannot be used; nftables changes run the nft command', err: expect.stringMatching(/cannot load libnftables\.so\.1: not found \[ERR_NFT_UNAVAILABLE\]/) });
  });
});

describe('native nftRun: argument checks (no privileges needed)', () => {
  const a = loadNative() as unknown as { nftRun: (...args: unknown[]) => void };

  const cb = (): void => undefined;
  it.each<[string, unknown[]]>([
    ['no callback', ['list ruleset', true]],
    ['a script that is not a string', [42, false, cb]],
    ['json not a boolean', ['list ruleset', 1, cb]],
  ])('refuses %s', (_name, args) => {
    expect(() => a.nftRun(...args)).toThrow(/nftRun\(script: string/);
  });

  it('refuses a script with a NUL (nft would run only its head)', () => {
    expect(() => a.nftRun('flush ruleset\0add table inet t', false, cb)).toThrow(/contains a NUL/);
  });
});
