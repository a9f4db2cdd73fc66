/**
 * ADD when the router runs the call in-process: its allocation answers before it is on disk
 * (`durable` pending), so the pod is configured and guarded meanwhile, but ADD answers only once
 * the allocation is persisted, and undoes everything when it cannot be.
 */
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ReleaseJournal } from '../../src/api/release-journal.js';
import { DaemonClient, type DaemonApi } from '../../src/cni/client.js';
import { handlers } from '../../src/cni/commands/index.js';
import { runPlugin } from '../../src/cni/skel.js';
import { WeftError } from '../../src/core/errors.js';
import { FakeDaemon } from './fake-daemon.js';
import { FakeLinks } from './fake-links.js';

const NETNS = '/var/run/netns/pod1';
const CID = 'c0ffee02';

let daemon: FakeDaemon;
let links: FakeLinks;

beforeEach(async () => {
  daemon = await new FakeDaemon({ v4Prefix: '10.99.0', v6Prefix: 'fd00:99::' }).start();
  links = new FakeLinks();
  links.addNamespace(NETNS);
});

afterEach(async () => {
  await daemon.destroy();
});

/** Runs ADD with allocate answering early, `durable` settling when the test says. */
function add(): { done: Promise<{ code: number; stdout: string }>; persist(): void; fail(err: Error): void } {
  let persist!: () => void;
  let fail!: (err: Error) => void;
  const durable = new Promise<void>((resolve, reject) => {
    persist = resolve;
    fail = reject;
  });
  durable.catch(() => undefined);
  const api = (socket: string): DaemonApi => {
    const client = new DaemonClient({ socket, timeoutMs: 2000 });
    return Object.assign(Object.create(client) as DaemonApi, {
      allocate: async (containerId: string, ifName: string, network?: string) => ({ ...(await client.allocate(containerId, ifName, network)), durable }),
    });
  };
  let stdout = '';
  const config = { cniVersion: '1.1.0', name: 'weft', type: 'weft', socket: daemon.socket, journalDir: join(daemon.dir, 'pending-releases') };
  const done = runPlugin(
    {
      env: { CNI_COMMAND: 'ADD', CNI_CONTAINERID: CID, CNI_NETNS: NETNS, CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin' },
      stdin: JSON.stringify(config),
      stdout: { write: (t: string) => (stdout += t) },
      stderr: { write: () => true },
    },
    handlers,
    { links, daemon: api, journal: (dir) => new ReleaseJournal(dir) },
  ).then((code) => ({ code, stdout }));
  return { done, persist, fail };
}

async function until(what: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !what(); i++) await new Promise((r) => setTimeout(r, 2));
  expect(what()).toBe(true);
}

describe('ADD with the allocation still being persisted', () => {
  it('configures and guards the pod meanwhile, and answers only once it is persisted', async () => {
    const a = add();
    let answered = false;
    void a.done.then(() => (answered = true));
    await until(() => links.calls.some((c) => c.startsWith('configure')) && daemon.guarded.size === 1);
    await new Promise((r) => setTimeout(r, 20));
    expect(answered).toBe(false);
    a.persist();
    const r = await a.done;
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ips: [{ address: '10.99.0.2/24' }, { address: 'fd00:99::2/64' }] });
  });

  it('a write that fails undoes everything: veth deleted, rules removed, allocation released (code 101)', async () => {
    const a = add();
    await until(() => daemon.guarded.size === 1);
    a.fail(new WeftError('ERR_IPAM_STATE', 'IPAM state /var/lib/weft/ipam.state: cannot write: ENOSPC'));
    const r = await a.done;
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ code: 101, msg: expect.stringMatching(/allocating an address for c0ffee02\/eth0: .*ENOSPC/) });
    expect(links.hosts.size).toBe(0);
    expect(daemon.guarded.size).toBe(0);
    expect(daemon.podAllocations()).toEqual([]);
  });
});
