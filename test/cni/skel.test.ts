/**
 * The plugin end to end in-process: injected env/stdin/stdout, a fake daemon on a real Unix socket
 * (so the client code runs for real) and in-memory links. Every command, every error code the
 * plugin produces, and the rollback and journaling rules.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ReleaseJournal } from '../../src/api/release-journal.js';
import { hostVethName } from '../../src/cni/veth.js';
import { FakeDaemon } from './fake-daemon.js';
import { FakeLinks } from './fake-links.js';
import { invoke, invokeIo } from './harness.js';

const NETNS = '/var/run/netns/pod1';
const CID = 'c0ffee01';

let daemon: FakeDaemon;
let links: FakeLinks;
let journalDir: string;

function conf(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { cniVersion: '1.1.0', name: 'weft', type: 'weft', socket: daemon.socket, journalDir, ...extra };
}

function env(command: string, extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return { CNI_COMMAND: command, CNI_CONTAINERID: CID, CNI_NETNS: NETNS, CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin', ...extra };
}

beforeEach(async () => {
  daemon = await new FakeDaemon({ v4Prefix: '10.99.0', v6Prefix: 'fd00:99::' }).start();
  links = new FakeLinks();
  links.addNamespace(NETNS);
  journalDir = join(daemon.dir, 'pending-releases');
});

afterEach(async () => {
  await daemon.destroy();
});

describe('VERSION', () => {
  it.each([
    ['no input', ''],
    ['1.0.0 asked', '{"cniVersion":"1.0.0"}'],
    ['1.1.0 asked', '{"cniVersion":"1.1.0"}'],
  ])('lists every supported version (%s)', async (_what, stdin) => {
    const r = await invoke(links, { CNI_COMMAND: 'VERSION' }, stdin);
    expect(r.code).toBe(0);
    expect(r.json).toEqual({ cniVersion: stdin === '' ? '1.1.0' : JSON.parse(stdin).cniVersion, supportedVersions: ['1.0.0', '1.1.0'] });
  });

  it.each([
    ['input that is not JSON', '{nope'],
    ['an unsupported version', '{"cniVersion":"0.4.0"}'],
    ['a version that is not a string', '{"cniVersion":1}'],
    ['JSON null', 'null'],
    ['a whole network config', JSON.stringify({ cniVersion: '9.9.9', name: 'weft', type: 'weft', bogus: 1 })],
  ])('ignores %s: answers with the latest version and the full list', async (_what, stdin) => {
    const r = await invoke(links, { CNI_COMMAND: 'VERSION' }, stdin);
    expect(r).toMatchObject({ code: 0, json: { cniVersion: '1.1.0', supportedVersions: ['1.0.0', '1.1.0'] } });
  });

  it('answers even when stdin could not be read', async () => {
    const r = await invokeIo(links, { CNI_COMMAND: 'VERSION' }, '', new Error('EBADF'));
    expect(r).toMatchObject({ code: 0, json: { cniVersion: '1.1.0', supportedVersions: ['1.0.0', '1.1.0'] } });
  });
});

describe('environment (code 4)', () => {
  it.each([
    ['no CNI_COMMAND', { CNI_COMMAND: undefined }, /CNI_COMMAND is not set/],
    ['unknown command', { CNI_COMMAND: 'FROB' }, /CNI_COMMAND "FROB" is not one of ADD, DEL, CHECK, STATUS, GC, VERSION/],
    ['ADD without netns and ifname', { CNI_NETNS: undefined, CNI_IFNAME: '' }, /ADD needs CNI_NETNS, CNI_IFNAME/],
    ['ADD without container id', { CNI_CONTAINERID: undefined }, /ADD needs CNI_CONTAINERID/],
    ['container id with a slash', { CNI_CONTAINERID: 'a/b' }, /CNI_CONTAINERID "a\/b" must start with a letter or digit/],
    ['container id starting with -', { CNI_CONTAINERID: '-x' }, /CNI_CONTAINERID/],
    ['ifname too long', { CNI_IFNAME: 'a234567890123456' }, /CNI_IFNAME "a234567890123456" is longer than 15 bytes/],
    ['ifname .', { CNI_IFNAME: '.' }, /CNI_IFNAME "\." is not a valid name/],
    ['ifname ..', { CNI_IFNAME: '..' }, /CNI_IFNAME "\.\." is not a valid name/],
    ['ifname with /', { CNI_IFNAME: 'et/h0' }, /contains '\/', ':' or whitespace/],
    ['ifname with space', { CNI_IFNAME: 'eth 0' }, /contains/],
    ['ifname with colon', { CNI_IFNAME: 'eth0:1' }, /contains/],
    ['relative netns', { CNI_NETNS: 'netns/pod1' }, /CNI_NETNS "netns\/pod1" must be an absolute path/],
    ['bad CNI_ARGS', { CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME' }, /CNI_ARGS: "K8S_POD_NAME" is not KEY=VALUE/],
    ['a requested address (podman run --ip)', { CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=x;IP=10.48.5.5' }, /CNI_ARGS IP=10\.48\.5\.5: weft assigns pod addresses from its cluster IPAM/],
    ['a requested MAC', { CNI_ARGS: 'IgnoreUnknown=1;MAC=02:00:00:00:00:01' }, /CNI_ARGS MAC=02:00:00:00:00:01: weft gives each pod interface a random MAC/],
  ])('%s', async (_what, extra, msg) => {
    const r = await invoke(links, env('ADD', extra), conf());
    expect(r.code).toBe(1);
    expect(r.json).toMatchObject({ code: 4, cniVersion: '1.1.0' });
    expect(String(r.json?.msg)).toMatch(msg);
    expect(daemon.requests).toEqual([]);
  });

  it('DEL needs no netns; CHECK does', async () => {
    expect((await invoke(links, env('DEL', { CNI_NETNS: undefined }), conf())).code).toBe(0);
    const r = await invoke(links, env('CHECK', { CNI_NETNS: '' }), conf({ prevResult: {} }));
    expect(r.json).toMatchObject({ code: 4, msg: expect.stringMatching(/CHECK needs CNI_NETNS/) });
  });

  it('STATUS and GC need no attachment variables', async () => {
    expect((await invoke(links, { CNI_COMMAND: 'STATUS' }, conf())).code).toBe(0);
    expect((await invoke(links, { CNI_COMMAND: 'GC' }, conf({ 'cni.dev/valid-attachments': [] }))).code).toBe(0);
  });
});

describe('input and network configuration', () => {
  it.each([
    ['empty stdin', '', 6, /no network configuration on stdin/],
    ['bad JSON', '{"cniVersion": ', 6, /not valid JSON/],
    ['an array', '[]', 6, /must be a JSON object/],
    ['unknown cniVersion', { cniVersion: '0.4.0', name: 'weft', type: 'weft' }, 1, /cniVersion "0.4.0", weft supports 1.0.0, 1.1.0/],
    ['cniVersion not a string', { cniVersion: 1, name: 'weft', type: 'weft' }, 1, /incompatible CNI versions/],
    ['missing cniVersion', { name: 'weft', type: 'weft' }, 1, /cniVersion is missing/],
    ['missing name', { cniVersion: '1.0.0', type: 'weft' }, 7, /name is missing/],
    ['missing type', { cniVersion: '1.0.0', name: 'weft' }, 7, /type is missing/],
    ['ipam present', { cniVersion: '1.0.0', name: 'weft', type: 'weft', ipam: { type: 'host-local' } }, 2, /ipam is not supported/],
    ['relative socket', { cniVersion: '1.0.0', name: 'weft', type: 'weft', socket: 'weft.sock' }, 7, /socket must be an absolute path/],
  ])('%s → code %i', async (_what, stdin, code, msg) => {
    const r = await invoke(links, env('ADD'), stdin);
    expect(r.code).toBe(1);
    expect(r.json).toMatchObject({ code });
    expect(String(r.json?.msg)).toMatch(msg);
    expect(Object.keys(r.json ?? {}).sort()).toEqual(expect.arrayContaining(['cniVersion', 'code', 'msg']));
  });

  it('the error carries the config version when it is one we speak', async () => {
    const r = await invoke(links, env('ADD'), { cniVersion: '1.0.0', name: 'weft', type: 'weft', mtu: 10 });
    expect(r.json).toMatchObject({ cniVersion: '1.0.0', code: 7, msg: expect.stringMatching(/mtu must be an integer in 576-65535, not 10/) });
  });

  it.each(['STATUS', 'GC'])('%s with a 1.0.0 config → code 1', async (cmd) => {
    const r = await invoke(links, { CNI_COMMAND: cmd }, conf({ cniVersion: '1.0.0', 'cni.dev/valid-attachments': [] }));
    expect(r.json).toMatchObject({ code: 1, msg: expect.stringMatching(new RegExp(`${cmd} needs cniVersion 1.1.0`)) });
  });
});

describe('ADD', () => {
  it('returns interfaces, ips on the container interface, routes and DNS', async () => {
    const dns = { nameservers: ['10.96.0.10'], search: ['svc.cluster.local'] };
    const r = await invoke(links, env('ADD', { CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=a' }), conf({ dns }));
    expect(r.code).toBe(0);
    const host = hostVethName(CID, 'eth0');
    expect(r.json).toEqual({
      cniVersion: '1.1.0',
      interfaces: [
        { name: 'weft', mac: '02:cc:00:00:00:01' },
        { name: host, mac: '02:aa:00:00:00:01', mtu: 1376 },
        { name: 'eth0', mac: expect.stringMatching(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/), mtu: 1376, sandbox: NETNS },
      ],
      ips: [
        { address: '10.99.0.2/24', gateway: '10.99.0.1', interface: 2 },
        { address: 'fd00:99::2/64', gateway: 'fd00:99::1', interface: 2 },
      ],
      routes: [
        { dst: '0.0.0.0/0', gw: '10.99.0.1' },
        { dst: '::/0', gw: 'fd00:99::1' },
      ],
      dns,
    });
    expect(links.calls).toEqual([`createPair ${NETNS} eth0 ${host} weft 1376`, `configure ${NETNS} eth0 10.99.0.2/24,fd00:99::2/64`]);
    expect(daemon.podAllocations()).toMatchObject([{ containerId: CID, ifName: 'eth0' }]);
    // the router guards the port with the container end's MAC: ADD picks it (locally administered
    // unicast) and gives it to both the pair and the router
    const mac = ((r.json?.interfaces as { mac: string }[])[2]!).mac;
    expect(parseInt(mac.slice(0, 2), 16) & 0b11).toBe(0b10);
    expect(links.namespaces.get(NETNS)!.get('eth0')!.link.mac).toBe(mac);
    expect(daemon.guarded).toEqual(new Map([[`${CID}\0eth0`, mac]]));
    // the pod's identity goes with the attach (NetworkPolicy selects the pod by it)
    expect(daemon.podOf).toEqual(new Map([[`${CID}\0eth0`, { namespace: 'default', name: 'a' }]]));
  });

  it.each([
    ['both keys', 'K8S_POD_NAMESPACE=team-a;K8S_POD_NAME=web-7f9c.x', { namespace: 'team-a', name: 'web-7f9c.x' }],
    ['neither key (not a Kubernetes pod)', 'IgnoreUnknown=1', undefined],
    // podman's CNI_ARGS: its container name (any text podman allows) and no namespace
    ['K8S_POD_NAME alone, as podman passes it', 'IgnoreUnknown=1;K8S_POD_NAME=My_Container', undefined],
    ['no CNI_ARGS', undefined, undefined],
  ])("the pod's identity from CNI_ARGS: %s", async (_what, args, pod) => {
    const r = await invoke(links, env('ADD', { CNI_ARGS: args }), conf());
    expect(r.code).toBe(0);
    expect(daemon.podOf.get(`${CID}\0eth0`)).toEqual(pod);
    expect(daemon.guarded.size).toBe(1);
  });

  it.each([
    ['a namespace that is no DNS label', 'K8S_POD_NAMESPACE=../etc;K8S_POD_NAME=a', /CNI_ARGS K8S_POD_NAMESPACE: "\.\.\/etc" is not a namespace name/],
    ['an upper-case namespace', 'K8S_POD_NAMESPACE=Team;K8S_POD_NAME=a', /CNI_ARGS K8S_POD_NAMESPACE: "Team" is not a namespace name/],
    ['a namespace of 64 characters', `K8S_POD_NAMESPACE=${'a'.repeat(64)};K8S_POD_NAME=a`, /CNI_ARGS K8S_POD_NAMESPACE: .* is not a namespace name/],
    ['a name with a quote', 'K8S_POD_NAMESPACE=default;K8S_POD_NAME=a"b', /CNI_ARGS K8S_POD_NAME: "a\\"b" is not a pod name/],
    ['an empty name', 'K8S_POD_NAMESPACE=default;K8S_POD_NAME=', /CNI_ARGS K8S_POD_NAME: "" is not a pod name/],
    ['a namespace without a name', 'K8S_POD_NAMESPACE=default', /CNI_ARGS has K8S_POD_NAMESPACE but no K8S_POD_NAME/],
  ])('refuses %s → code 4, before anything is made', async (_what, args, msg) => {
    const r = await invoke(links, env('ADD', { CNI_ARGS: args }), conf());
    expect(r.json).toMatchObject({ code: 4, msg: expect.stringMatching(msg) });
    expect(links.calls).toEqual([]);
    expect(daemon.podAllocations()).toEqual([]);
    expect(daemon.guarded.size).toBe(0);
  });

  it.each([
    ['the router refuses to guard the port', () => void daemon.failures.set('/v1/cni/attach', [500, 'ERR_POD_GUARD']), 101, /guarding the port of c0ffee01\/eth0: the weft router refused/],
    ['the router cannot guard pods yet', () => void daemon.failures.set('/v1/cni/attach', [503, 'ERR_IPAM_NOT_READY']), 11, /guarding the port/],
    ["the router cannot program the pods' table now", () => void daemon.failures.set('/v1/cni/attach', [503, 'ERR_POD_GUARD']), 11, /guarding the port of c0ffee01\/eth0: the weft router is not ready/],
  ])('%s → code %i: veth deleted, allocation released, nothing guarded', async (_what, setup, code, msg) => {
    setup();
    const r = await invoke(links, env('ADD'), conf());
    expect(r.json).toMatchObject({ code, msg: expect.stringMatching(msg) });
    expect(links.hosts.size).toBe(0);
    expect(daemon.podAllocations()).toEqual([]);
    expect(daemon.guarded.size).toBe(0);
    expect(daemon.requests.some((q) => q.path === '/v1/cni/detach')).toBe(true);
  });

  it('a failure after the port was guarded removes its rules', async () => {
    links.failConfigure = true;
    const r = await invoke(links, env('ADD'), conf());
    expect(r.json).toMatchObject({ code: 102 });
    expect(daemon.guarded.size).toBe(0);
  });

  it('speaks 1.0.0 (no interface mtu) and takes the MTU override', async () => {
    const r = await invoke(links, env('ADD'), conf({ cniVersion: '1.0.0', mtu: 1400 }));
    expect(r.code).toBe(0);
    const itfs = r.json?.interfaces as Record<string, unknown>[];
    expect(r.json?.cniVersion).toBe('1.0.0');
    expect(itfs.every((i) => i.mtu === undefined)).toBe(true);
    expect(links.calls[0]).toMatch(/ 1400$/);
    expect(r.json?.dns).toBeUndefined();
  });

  it('IPv4 only: one ip, one route', async () => {
    await daemon.destroy();
    daemon = await new FakeDaemon({ v4Prefix: '10.98.0' }).start();
    const r = await invoke(links, env('ADD'), conf());
    expect(r.json).toMatchObject({ ips: [{ address: '10.98.0.2/24', interface: 2 }], routes: [{ dst: '0.0.0.0/0', gw: '10.98.0.1' }] });
  });

  it.each([
    ['router unreachable', 11, async () => daemon.stop(), /not reachable/],
    ['router not ready', 11, async () => void (daemon.ready = false), /not ready for pods: IPAM has not joined/],
    ['pool exhausted', 100, async () => void daemon.failures.set('/v1/ipam/allocate', [507, 'ERR_IPAM_EXHAUSTED']), /no pod address left/],
    ['allocation refused', 101, async () => void daemon.failures.set('/v1/ipam/allocate', [400, 'ERR_IPAM_BAD_REQUEST']), /refused.*ERR_IPAM_BAD_REQUEST/],
    ['allocation not ready', 11, async () => void daemon.failures.set('/v1/ipam/allocate', [503, 'ERR_IPAM_NOT_READY']), /not ready/],
  ])('%s → code %i, nothing left behind', async (_what, code, setup, msg) => {
    await setup();
    const r = await invoke(links, env('ADD'), conf());
    expect(r.json).toMatchObject({ code, msg: expect.stringMatching(msg) });
    expect(links.hosts.size).toBe(0);
    expect(links.namespaces.get(NETNS)?.size).toBe(0);
    expect(daemon.podAllocations()).toEqual([]);
    // the port was guarded while the pair was made (the attach runs beside it): the guard goes too
    expect(daemon.guarded.size).toBe(0);
  });

  it('a netns that is not one → code 4, nothing allocated', async () => {
    const r = await invoke(links, env('ADD', { CNI_NETNS: '/proc/1/ns/nope' }), conf());
    expect(r.json).toMatchObject({ code: 4, msg: expect.stringMatching(/CNI_NETNS: \/proc\/1\/ns\/nope is not a network namespace/) });
    expect(daemon.podAllocations()).toEqual([]);
  });

  it('an ifName already in the netns → code 4, the existing interface untouched, nothing allocated', async () => {
    links.addNamespace(NETNS, ['eth0']);
    const r = await invoke(links, env('ADD'), conf());
    expect(r.json).toMatchObject({ code: 4, msg: expect.stringMatching(/CNI_IFNAME: interface eth0 already exists/) });
    expect(links.namespaces.get(NETNS)?.has('eth0')).toBe(true);
    expect(links.calls.some((c) => c.startsWith('removeHost'))).toBe(false);
    expect(daemon.podAllocations()).toEqual([]);
  });

  it("a repeated ADD of a live pod that fails (its interface is there) leaves the pod's allocation and guard as they were", async () => {
    const first = await invoke(links, env('ADD'), conf());
    expect(first.code).toBe(0);
    const guardedBefore = new Map(daemon.guarded);
    const r = await invoke(links, env('ADD'), conf());
    expect(r.json).toMatchObject({ code: 4, msg: expect.stringMatching(/CNI_IFNAME: interface eth0 already exists/) });
    expect(daemon.podAllocations()).toMatchObject([{ containerId: CID, ifName: 'eth0' }]);
    expect(daemon.guarded).toEqual(guardedBefore); // same MAC, not detached
    expect(daemon.requests.filter((q) => q.path === '/v1/cni/attach' || q.path === '/v1/cni/detach').map((q) => q.path)).toEqual(['/v1/cni/attach']);
  });

  it.each([
    ['the bridge attach fails', () => void (links.failAttach = true), /attaching .* to bridge weft/],
    ['configuring the pod fails', () => void (links.failConfigure = true), /configuring eth0 .*Permission denied/],
  ])('%s → code 102, veth deleted and allocation released', async (_what, setup, msg) => {
    setup();
    const r = await invoke(links, env('ADD'), conf());
    expect(r.json).toMatchObject({ code: 102, msg: expect.stringMatching(msg) });
    expect(links.hosts.size).toBe(0);
    expect(links.namespaces.get(NETNS)?.size).toBe(0);
    expect(daemon.podAllocations()).toEqual([]);
  });

  it('an allocation in a family without a gateway is rolled back', async () => {
    daemon.gateways = () => [{ address: '10.99.0.1', prefixLength: 24, family: 4 }];
    const r = await invoke(links, env('ADD'), conf());
    expect(r.json).toMatchObject({ code: 101, msg: expect.stringMatching(/no IPv6 gateway on weft/) });
    expect(links.hosts.size).toBe(0);
    expect(daemon.podAllocations()).toEqual([]);
  });

  it('rollback journals the release when the router went away mid-ADD', async () => {
    links.failConfigure = true;
    const orig = links.configure.bind(links);
    links.configure = async (a) => {
      await daemon.stop();
      return orig(a);
    };
    const r = await invoke(links, env('ADD'), conf());
    expect(r.json).toMatchObject({ code: 102 });
    expect(new ReleaseJournal(journalDir).pending()).toMatchObject([{ containerId: CID, ifName: 'eth0' }]);
  });

  it('drops a journaled release of the same attachment (it is being added again)', async () => {
    new ReleaseJournal(journalDir).record(CID, 'eth0');
    new ReleaseJournal(journalDir).record('other', 'eth0');
    expect((await invoke(links, env('ADD'), conf())).code).toBe(0);
    expect(new ReleaseJournal(journalDir).pending().map((e) => e.containerId)).toEqual(['other']);
  });

  it('a lost answer to allocate is undone too (journaled when the router stays away)', async () => {
    const orig = links.createPair.bind(links);
    links.createPair = async (spec) => {
      const pair = await orig(spec);
      await daemon.stop();
      return pair;
    };
    const r = await invoke(links, env('ADD'), conf());
    expect(r.json).toMatchObject({ code: 11 });
    expect(links.hosts.size).toBe(0);
    expect(new ReleaseJournal(journalDir).pending()).toMatchObject([{ containerId: CID, ifName: 'eth0' }]);
  });

  it('a malformed daemon answer is reported, not trusted', async () => {
    daemon.mtu = 12;
    const r = await invoke(links, env('ADD'), conf());
    expect(r.json).toMatchObject({ code: 101, msg: expect.stringMatching(/answered \/v1\/cni\/network with an invalid mtu 12/) });
  });
});

describe('DEL', () => {
  it('removes the veth and releases; idempotent; needs neither prevResult nor netns', async () => {
    expect((await invoke(links, env('ADD'), conf())).code).toBe(0);
    const del = await invoke(links, env('DEL'), conf());
    expect(del).toMatchObject({ code: 0, stdout: '' });
    expect(links.hosts.size).toBe(0);
    expect(daemon.podAllocations()).toEqual([]);
    expect(daemon.guarded.size).toBe(0);
    expect((await invoke(links, env('DEL'), conf())).code).toBe(0);
    expect((await invoke(links, env('DEL', { CNI_NETNS: undefined }), conf())).code).toBe(0);
    expect((await invoke(links, env('DEL', { CNI_NETNS: '/var/run/netns/gone' }), conf({ prevResult: { cniVersion: '1.1.0' } }))).code).toBe(0);
  });

  it('router unreachable: succeeds and journals the release', async () => {
    expect((await invoke(links, env('ADD'), conf())).code).toBe(0);
    await daemon.stop();
    const r = await invoke(links, env('DEL'), conf());
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/journaled/);
    expect(links.hosts.size).toBe(0);
    expect(new ReleaseJournal(journalDir).pending()).toMatchObject([{ containerId: CID, ifName: 'eth0' }]);
  });

  it('router unreachable and the journal unwritable → code 5', async () => {
    await daemon.stop();
    const file = join(daemon.dir, 'not-a-dir');
    writeFileSync(file, '');
    const r = await invoke(links, env('DEL'), conf({ journalDir: join(file, 'x') }));
    expect(r.json).toMatchObject({ code: 5, msg: expect.stringMatching(/could not be journaled/) });
  });

  it('a veth that cannot be deleted → code 102 and the address is kept', async () => {
    expect((await invoke(links, env('ADD'), conf())).code).toBe(0);
    links.failRemove = true;
    const r = await invoke(links, env('DEL'), conf());
    expect(r.json).toMatchObject({ code: 102 });
    expect(daemon.podAllocations()).toHaveLength(1);
  });

  it('a router that refuses to drop the rules does not fail DEL (it drops them when it sees the port gone)', async () => {
    expect((await invoke(links, env('ADD'), conf())).code).toBe(0);
    daemon.failures.set('/v1/cni/detach', [500, 'ERR_POD_GUARD']);
    const r = await invoke(links, env('DEL'), conf());
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/kept the rules of vw[0-9a-f]{12}/);
    expect(daemon.podAllocations()).toEqual([]);
  });

  it('a release the router refuses → code 101', async () => {
    daemon.failures.set('/v1/ipam/release', [400, 'ERR_IPAM_BAD_REQUEST']);
    expect((await invoke(links, env('DEL'), conf())).json).toMatchObject({ code: 101 });
  });
});

describe('CHECK', () => {
  async function added(): Promise<Record<string, unknown>> {
    const r = await invoke(links, env('ADD'), conf());
    expect(r.code).toBe(0);
    return r.json!;
  }

  it('passes on an intact attachment', async () => {
    const prevResult = await added();
    expect(await invoke(links, env('CHECK'), conf({ prevResult }))).toMatchObject({ code: 0, stdout: '' });
  });

  it('needs prevResult (code 7)', async () => {
    expect((await invoke(links, env('CHECK'), conf())).json).toMatchObject({ code: 7, msg: expect.stringMatching(/prevResult is missing/) });
  });

  it('rejects a malformed prevResult (code 7)', async () => {
    const r = await invoke(links, env('CHECK'), conf({ prevResult: { cniVersion: '1.1.0', ips: [{ address: '10.0.0.1' }] } }));
    expect(r.json).toMatchObject({ code: 7, msg: expect.stringMatching(/prevResult.ips\[0\].address/) });
  });

  it('missing interface or netns → code 3', async () => {
    const prevResult = await added();
    links.namespaces.get(NETNS)!.delete('eth0');
    expect((await invoke(links, env('CHECK'), conf({ prevResult }))).json).toMatchObject({ code: 3, msg: expect.stringMatching(/eth0 does not exist/) });
    links.namespaces.delete(NETNS);
    expect((await invoke(links, env('CHECK'), conf({ prevResult }))).json).toMatchObject({ code: 3, msg: expect.stringMatching(/is gone/) });
  });

  it('names every difference (code 103)', async () => {
    const prevResult = await added();
    const itf = links.namespaces.get(NETNS)!.get('eth0')!;
    itf.link.addresses = ['10.99.0.2/24'];
    itf.link.mtu = 1500;
    itf.routes = itf.routes.filter((r) => r.dst !== '::/0');
    daemon.allocations.clear();
    const r = await invoke(links, env('CHECK'), conf({ prevResult }));
    expect(r.json?.code).toBe(103);
    const msg = String(r.json?.msg);
    expect(msg).toMatch(/MTU 1500, expected 1376/);
    expect(msg).toMatch(/lacks address fd00:99::2\/64/);
    expect(msg).toMatch(/route ::\/0 via fd00:99::1 on eth0 is missing/);
    expect(msg).toMatch(/holds no allocation/);
  });
});

describe('several attachments in one pod (Multus: same container id and netns, another ifName)', () => {
  const net1 = (extra: Record<string, string | undefined> = {}): Record<string, string | undefined> => env('ADD', { CNI_IFNAME: 'net1', ...extra });

  it('the second gets its own address and no second default route; the config routes are added and reported', async () => {
    const first = await invoke(links, env('ADD'), conf());
    expect(first.json?.routes).toEqual([
      { dst: '0.0.0.0/0', gw: '10.99.0.1' },
      { dst: '::/0', gw: 'fd00:99::1' },
    ]);
    const second = await invoke(links, net1(), conf({ routes: [{ dst: '192.168.0.0/16' }, { dst: 'fd01::/48', gw: 'fd00:99::9' }] }));
    expect(second.code).toBe(0);
    expect(second.json).toMatchObject({
      interfaces: [{ name: 'weft' }, { name: hostVethName(CID, 'net1') }, { name: 'net1', sandbox: NETNS }],
      ips: [
        { address: '10.99.0.3/24', interface: 2 },
        { address: 'fd00:99::3/64', interface: 2 },
      ],
      routes: [
        { dst: '192.168.0.0/16', gw: '10.99.0.1' },
        { dst: 'fd01::/48', gw: 'fd00:99::9' },
      ],
    });
    expect(links.namespaces.get(NETNS)!.get('net1')!.routes.map((r) => r.dst)).toEqual(['192.168.0.0/16', 'fd01::/48']);
    // CHECK of each passes; DEL of one leaves the other
    expect((await invoke(links, env('CHECK'), conf({ prevResult: first.json }))).code).toBe(0);
    expect((await invoke(links, env('CHECK', { CNI_IFNAME: 'net1' }), conf({ prevResult: second.json }))).code).toBe(0);
    expect((await invoke(links, env('DEL'), conf())).code).toBe(0);
    expect([...links.namespaces.get(NETNS)!.keys()]).toEqual(['net1']);
    expect(daemon.podAllocations()).toMatchObject([{ containerId: CID, ifName: 'net1' }]);
    expect((await invoke(links, env('CHECK', { CNI_IFNAME: 'net1' }), conf({ prevResult: second.json }))).code).toBe(0);
  });

  it('defaultRoute true asks for one even when the netns has one (and fails, undone, when the kernel has one there)', async () => {
    expect((await invoke(links, env('ADD'), conf())).code).toBe(0);
    const r = await invoke(links, net1(), conf({ defaultRoute: true }));
    expect(r.json).toMatchObject({ code: 102, msg: expect.stringMatching(/0.0.0.0\/0: EEXIST/) });
    expect([...links.namespaces.get(NETNS)!.keys()]).toEqual(['eth0']);
    expect(daemon.podAllocations().map((a) => a.ifName)).toEqual(['eth0']);
  });

  it('defaultRoute false: the first attachment gets none', async () => {
    const r = await invoke(links, env('ADD'), conf({ defaultRoute: false }));
    expect(r.json?.routes).toEqual([]);
  });

  it('a route without gw for a family the network has no gateway of → code 7, nothing changed', async () => {
    await daemon.destroy();
    daemon = await new FakeDaemon({ v4Prefix: '10.98.0' }).start();
    const r = await invoke(links, env('ADD'), conf({ routes: [{ dst: '10.0.0.0/8' }, { dst: 'fd01::/48' }] }));
    expect(r.json).toMatchObject({ code: 7, msg: expect.stringMatching(/routes\[1\].dst fd01::\/48 has no gw and the weft network has no IPv6 gateway/) });
    expect(links.calls).toEqual([]);
    expect(daemon.podAllocations()).toEqual([]);
  });

  it('CHECK reads a result of the older shape (host veth, container interface)', async () => {
    const r = await invoke(links, env('ADD'), conf());
    const prev = r.json as { interfaces: unknown[]; ips: { interface: number }[] };
    const old = { ...prev, interfaces: prev.interfaces.slice(1), ips: prev.ips.map((ip) => ({ ...ip, interface: 1 })) };
    expect((await invoke(links, env('CHECK'), conf({ prevResult: old }))).code).toBe(0);
    links.namespaces.get(NETNS)!.get('eth0')!.link.addresses = [];
    expect(String((await invoke(links, env('CHECK'), conf({ prevResult: old }))).json?.msg)).toMatch(/eth0 lacks address 10.99.0.2\/24; eth0 lacks address fd00:99::2\/64/);
  });
});

describe("the node's own netns as CNI_NETNS", () => {
  it.each(['ADD', 'CHECK'])('%s → code 4 naming the path, nothing changed', async (cmd) => {
    links.addNamespace(links.ownNetns);
    const r = await invoke(links, env(cmd, { CNI_NETNS: links.ownNetns }), conf({ prevResult: { cniVersion: '1.1.0' } }));
    expect(r.json).toMatchObject({ code: 4, msg: expect.stringMatching(/CNI_NETNS \/proc\/self\/ns\/net is the node's own network namespace/) });
    expect(links.calls).toEqual([]);
    expect(daemon.requests).toEqual([]);
  });
});

describe('stdin that cannot be read', () => {
  it.each(['ADD', 'DEL', 'CHECK', 'STATUS', 'GC'])('%s → code 5, nothing done', async (cmd) => {
    const r = await invokeIo(links, env(cmd), '', new Error('EISDIR: illegal operation on a directory, read'));
    expect(r).toMatchObject({ code: 1, json: { code: 5, msg: expect.stringMatching(/cannot read the network configuration from stdin: EISDIR/) } });
    expect(daemon.requests).toEqual([]);
  });
});

describe('STATUS', () => {
  it('ready → exit 0, no output', async () => {
    expect(await invoke(links, { CNI_COMMAND: 'STATUS' }, conf())).toMatchObject({ code: 0, stdout: '' });
  });

  it('not ready → code 50 with the reason', async () => {
    daemon.ready = false;
    const r = await invoke(links, { CNI_COMMAND: 'STATUS' }, conf());
    expect(r.json).toMatchObject({ code: 50, msg: expect.stringMatching(/not ready.*IPAM has not joined the ring/) });
  });

  it('unreachable → code 50 naming the socket', async () => {
    await daemon.stop();
    const r = await invoke(links, { CNI_COMMAND: 'STATUS' }, conf());
    expect(r.json).toMatchObject({ code: 50, msg: expect.stringContaining(`router not reachable on ${daemon.socket}`) });
  });
});

describe('GC', () => {
  it('releases what the runtime no longer has, keeps the valid ones and the router\'s own', async () => {
    for (const id of ['keep1', 'gone1', 'gone2']) {
      links.addNamespace(`/ns/${id}`);
      expect((await invoke(links, env('ADD', { CNI_CONTAINERID: id, CNI_NETNS: `/ns/${id}` }), conf())).code).toBe(0);
    }
    daemon.age(60_000); // made a minute ago: past GC's grace for fresh ADDs
    const r = await invoke(links, { CNI_COMMAND: 'GC' }, conf({ 'cni.dev/valid-attachments': [{ containerID: 'keep1', ifname: 'eth0' }] }));
    expect(r.code).toBe(0);
    expect(daemon.podAllocations().map((a) => a.containerId)).toEqual(['keep1']);
    expect([...daemon.allocations.values()].some((a) => a.containerId === 'weft:gateway')).toBe(true);
    expect([...links.hosts.keys()]).toEqual([hostVethName('keep1', 'eth0')]);
  });

  it('accepts the older key cni.dev/attachments', async () => {
    links.addNamespace('/ns/x');
    await invoke(links, env('ADD', { CNI_CONTAINERID: 'x', CNI_NETNS: '/ns/x' }), conf());
    daemon.age(60_000); // made a minute ago: past GC's grace for fresh ADDs
    expect((await invoke(links, { CNI_COMMAND: 'GC' }, conf({ 'cni.dev/attachments': [] }))).code).toBe(0);
    expect(daemon.podAllocations()).toEqual([]);
  });

  it.each([
    ['the key missing', {}],
    ['cni.dev/valid-attachments: null', { 'cni.dev/valid-attachments': null }],
    ['cni.dev/attachments: null', { 'cni.dev/attachments': null }],
  ])('%s means an empty list: every pod attachment goes', async (_what, extra) => {
    links.addNamespace('/ns/x');
    expect((await invoke(links, env('ADD', { CNI_CONTAINERID: 'x', CNI_NETNS: '/ns/x' }), conf())).code).toBe(0);
    daemon.age(60_000); // made a minute ago: past GC's grace for fresh ADDs
    const r = await invoke(links, { CNI_COMMAND: 'GC' }, conf(extra));
    expect(r.code).toBe(0);
    expect(daemon.podAllocations()).toEqual([]);
    expect(links.hosts.size).toBe(0);
  });

  it('a malformed list → code 7 naming the entry', async () => {
    const r = await invoke(links, { CNI_COMMAND: 'GC' }, conf({ 'cni.dev/valid-attachments': [{ containerID: 'a' }] }));
    expect(r.json).toMatchObject({ code: 7, msg: expect.stringMatching(/cni.dev\/valid-attachments\[0\]/) });
  });

  it('router unreachable → code 11', async () => {
    await daemon.stop();
    expect((await invoke(links, { CNI_COMMAND: 'GC' }, conf({ 'cni.dev/valid-attachments': [] }))).json).toMatchObject({ code: 11 });
  });
});

describe('journal directory default', () => {
  it('is under /var/lib/weft', async () => {
    const { DEFAULT_JOURNAL_DIR } = await import('../../src/cni/netconf.js');
    expect(DEFAULT_JOURNAL_DIR).toBe('/var/lib/weft/pending-releases');
  });
});
