import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/core/errors.js';
import { ipamBootstrap, validateConfig } from '../../src/daemon/config.js';

const good = { name: 'node-1', listen: '198.18.0.1:6784', peers: ['198.18.0.2'], secretFile: '/etc/weft/secret' };

describe('validateConfig', () => {
  it('fills defaults', () => {
    const c = validateConfig(good);
    expect(c.listen).toEqual({ address: '198.18.0.1', port: 6784, family: 4 });
    expect(c.peers).toEqual([{ host: '198.18.0.2', port: 6784, family: 4 }]);
    expect(c.bridge).toBe('weft');
    expect(c.tap).toBe('weft-tap');
    expect(c.vnetHdr).toBe(true);
    expect(c.plaintext).toBe(false);
    expect(c.underlayMtu).toBeUndefined();
    expect(c.cryptoThreads).toBeUndefined(); // detected at start
    expect(validateConfig({ ...good, cryptoThreads: '2' }).cryptoThreads).toBe(2);
    expect(c.stateDir).toBe('/var/lib/weft');
    expect(c.rekeyMs).toBe(120_000);
    // a specific listen address is what the router announces
    expect(c.advertise).toEqual([{ address: '198.18.0.1', port: 6784, family: 4 }]);
  });

  it('announces nothing by default when listening on every address, and what --advertise says otherwise', () => {
    expect(validateConfig({ ...good, listen: '0.0.0.0:6784' }).advertise).toEqual([]);
    expect(validateConfig({ ...good, listen: '0.0.0.0:6784', advertise: ['203.0.113.7'] }).advertise).toEqual([{ address: '203.0.113.7', port: 6784, family: 4 }]);
  });

  it('parses trusted subnets, comma-separated or repeated', () => {
    const c = validateConfig({ ...good, trustedSubnets: ['198.18.0.0/15,10.1.0.0/16', '192.0.2.0/24'] });
    expect(c.trustedSubnets).toEqual([{ address: '198.18.0.0', prefix: 15 }, { address: '10.1.0.0', prefix: 16 }, { address: '192.0.2.0', prefix: 24 }]);
    expect(c.fastpath).toBe('auto');
  });

  it('accepts plaintext with or without a secret (a secret still authenticates the mesh)', () => {
    expect(validateConfig({ ...good, plaintext: true }).secretFile).toBe('/etc/weft/secret');
    expect(validateConfig({ ...good, plaintext: true, secretFile: undefined }).secretFile).toBeUndefined();
  });

  it('accepts IPv6 endpoints', () => {
    const c = validateConfig({ ...good, listen: '[::]:7000', peers: ['[fd00::2]:7000'] });
    expect(c.listen.family).toBe(6);
    expect(c.peers[0]).toEqual({ host: 'fd00::2', port: 7000, family: 6 });
  });

  it.each([
    ['node-2.example.net', { host: 'node-2.example.net', port: 6784, family: 0 }],
    ['Node-2.Example.NET.:7000', { host: 'node-2.example.net', port: 7000, family: 0 }],
    ['localhost:1', { host: 'localhost', port: 1, family: 0 }],
    ['[fd00::2]', { host: 'fd00::2', port: 6784, family: 6 }],
  ])('takes --peer %s (a host name, kept lowercase, or an address)', (text, peer) => {
    expect(validateConfig({ ...good, listen: '[::]:6784', peers: [text] }).peers).toEqual([peer]);
  });

  it.each([
    [{ name: undefined }, '--name: required'],
    [{ peers: ['under_score:6784'] }, '--peer #1: "under_score:6784" is neither an IP address nor a host name'],
    [{ peers: ['-dash.example:6784'] }, '--peer #1: "-dash.example:6784" is neither'],
    [{ peers: ['10.0.0:6784'] }, '--peer #1: "10.0.0:6784" is neither'],
    [{ peers: [`${'a'.repeat(64)}.example:6784`] }, 'is neither an IP address nor a host name'],
    [{ peers: ['node.example:http'] }, '--peer #1: "node.example:http" has an invalid port "http"'],
    [{ peers: ['node.example:0'] }, 'has port 0 outside 1-65535'],
    [{ peers: ['a:b:c'] }, '--peer #1: "a:b:c" has an invalid port "b:c"'],
    [{ name: '-bad' }, '--name: "-bad"'],
    [{ listen: 'nowhere:1' }, '--listen: "nowhere:1" is not an IP address'],
    [{ listen: '198.18.0.1:70000' }, 'outside 1-65535'],
    [{ peers: ['198.18.0.2', '300.1.1.1'] }, '--peer #2'],
    [{ secretFile: undefined }, '--secret-file: required'],
    [{ advertise: ['0.0.0.0:6784'] }, '--advertise #1: "0.0.0.0:6784" must be a specific address'],
    [{ advertise: ['nowhere:x'] }, '--advertise #1'],
    [{ stateDir: 'var/lib/weft' }, '--state-dir: "var/lib/weft" must be an absolute path'],
    [{ rekeySeconds: '1' }, '--rekey-seconds: "1" must be an integer from 2'],
    [{ fastpath: 'sometimes' }, '--fastpath: "sometimes" must be auto or off'],
    [{ trustedSubnets: ['198.18.0.0/33'] }, '--trusted-subnets: "198.18.0.0/33" is not an IPv4 CIDR'],
    [{ trustedSubnets: ['10.0.0.0/8,nonsense'] }, '--trusted-subnets: "nonsense" is not an IPv4 CIDR'],
    [{ bridge: 'a-name-that-is-far-too-long' }, '--bridge'],
    [{ tap: 'weft' }, '--bridge and --tap must differ'],
    [{ underlayMtu: '900' }, '--underlay-mtu: "900" must be an integer from 1280'],
    [{ cryptoThreads: '17' }, '--crypto-threads: "17" must be an integer from 0 to 16'],
    [{ mtu: 'x' }, '--mtu: "x"'],
    [{ logLevel: 'loud' }, '--log-level: "loud"'],
    [{ apiSocket: 'relative.sock' }, '--api-socket: "relative.sock" must be an absolute path'],
    [{ apiSocket: '/run/weft/\0abstract' }, 'contains a NUL byte'],
    [{ apiSocket: `/run/${'x'.repeat(110)}.sock` }, 'is longer than 107 bytes'],
    [{ unknown: ['--frobnicate'] }, 'unknown option "--frobnicate"'],
    [{ listen: '198.18.0.1:1', peers: ['[fd00::1]:1'] }, 'is IPv6 but --listen is IPv4'],
    [{ ipamRange: 'fd00::/64' }, '--ipam-range: "fd00::/64" must be an IPv4 CIDR'],
    [{ ipamRange: '10.0.0.0/31' }, 'of at least 4 addresses'],
    [{ ipamRange6: '10.1.0.0/16' }, '--ipam-range6: "10.1.0.0/16" must be an IPv6 CIDR'],
    [{ ipamRange: 'none', ipamRange6: 'fd00::/64' }, '--ipam-range6: needs --ipam-range'],
    [{ ipamSeed: ['0123456789abcdef,node-2'] }, '--ipam-seed: "node-2" is not a peer name'],
    [{ ipamSeed: ['0123456789abcdef'], ipamInitPeers: '3' }, 'give one or the other'],
    [{ ipamInitPeers: '0' }, '--ipam-init-peers: "0" must be an integer from 1'],
    [{ ipamQuarantineSeconds: '-5' }, '--ipam-quarantine-seconds'],
  ])('reports %o', (patch, message) => {
    expect(() => validateConfig({ ...good, ...patch })).toThrow(message);
  });

  it('IPAM: on by default (10.32.0.0/12, joining the ring of the routers given as --peer), dual-stack, seeds, or off', () => {
    expect(validateConfig(good).ipam).toEqual({ ranges: ['10.32.0.0/12'], init: { join: true }, quarantineMs: 300_000, ownership: 'ring' });
    const c = validateConfig({ ...good, ipamRange: '10.44.0.0/16', ipamRange6: 'fd00:44::/64', ipamSeed: ['0123456789abcdef, fedcba9876543210', '0123456789abcdef'], ipamQuarantineSeconds: '30' });
    expect(c.ipam).toEqual({ ranges: ['10.44.0.0/16', 'fd00:44::/64'], init: { seeds: ['0123456789abcdef', 'fedcba9876543210'] }, quarantineMs: 30_000, ownership: 'ring' });
    expect(validateConfig({ ...good, ipamRange: 'none' }).ipam).toBeUndefined();
  });

  describe('Kubernetes mode and metrics', () => {
    const files: Record<string, string> = { '/var/run/secrets/kubernetes.io/serviceaccount/token': 'tok', '/var/run/secrets/kubernetes.io/serviceaccount/namespace': 'weft-system\n' };
    const outside = { env: {}, readFile: () => undefined, hostname: () => 'Host-A' };
    const inPod = { env: { KUBERNETES_SERVICE_HOST: '10.96.0.1', NODE_NAME: 'node-a' }, readFile: (p: string) => files[p], hostname: () => 'ignored' };

    it('is off by default, on with --kubernetes (node name from the host name, lowercased; namespace kube-system)', () => {
      expect(validateConfig(good, outside).kubernetes).toBeUndefined();
      expect(validateConfig({ ...good, kubernetes: true }, outside).kubernetes).toEqual({ kubeconfig: undefined, nodeName: 'host-a', namespace: 'kube-system', detected: false });
      expect(validateConfig({ ...good, kubernetes: true }, outside).ipam?.ownership).toBe('kubernetes');
    });

    it('turns on by itself in a pod with a service account: $NODE_NAME and the pod namespace', () => {
      expect(validateConfig({ ...good, peers: [] }, inPod).kubernetes).toEqual({ kubeconfig: undefined, nodeName: 'node-a', namespace: 'weft-system', detected: true });
      // KUBERNETES_SERVICE_HOST without a token is not a pod with a service account.
      expect(validateConfig(good, { ...inPod, readFile: () => undefined }).kubernetes).toBeUndefined();
    });

    it('takes the flags over the surroundings', () => {
      const c = validateConfig({ ...good, kubernetes: true, nodeName: 'n-1.example', kubeNamespace: 'weft', kubeconfig: '/etc/weft/kubeconfig' }, inPod);
      expect(c.kubernetes).toEqual({ kubeconfig: '/etc/weft/kubeconfig', nodeName: 'n-1.example', namespace: 'weft', detected: false });
    });

    it('serves metrics only when asked, on port 6782 unless given', () => {
      expect(validateConfig(good, outside).metrics).toBeUndefined();
      expect(validateConfig({ ...good, metricsAddr: '0.0.0.0' }, outside).metrics).toEqual({ address: '0.0.0.0', port: 6782, family: 4 });
      expect(validateConfig({ ...good, metricsAddr: '[::1]:9100' }, outside).metrics).toMatchObject({ address: '::1', port: 9100 });
    });

    it.each([
      [{ nodeName: 'n1' }, '--node-name: only in Kubernetes mode (give --kubernetes)'],
      [{ kubeconfig: '/k' }, '--kubeconfig: only in Kubernetes mode'],
      [{ kubernetes: true, nodeName: 'Node_1' }, '--node-name: "Node_1" must be at most 253 characters of lowercase letters'],
      [{ kubernetes: true, kubeNamespace: 'a'.repeat(64) }, '--kube-namespace: "aaaa'],
      [{ kubernetes: true, ipamSeed: ['0123456789abcdef'] }, '--ipam-seed: not used in Kubernetes mode'],
      [{ kubernetes: true, ipamInitPeers: '3' }, '--ipam-init-peers: not used in Kubernetes mode'],
      [{ metricsAddr: 'nowhere' }, '--metrics-addr: '],
    ])('reports %o', (patch, message) => {
      expect(() => validateConfig({ ...good, ...patch }, outside)).toThrow(message);
    });

    it.each([
      ['auto outside Kubernetes mode', {}, false],
      ['auto with --kubernetes', { kubernetes: true }, true],
      ['on without Kubernetes mode', { serviceBridge: 'on' }, true],
      ['off in Kubernetes mode', { kubernetes: true, serviceBridge: 'off' }, false],
    ])('--service-bridge %s: the router sets up the bridge for Services = %s', (_, patch, want) => {
      expect(validateConfig({ ...good, ...patch }, outside).serviceBridge).toBe(want);
    });

    it('--service-bridge takes auto, on or off', () => {
      expect(() => validateConfig({ ...good, serviceBridge: 'yes' }, outside)).toThrow('--service-bridge');
    });

    it.each([
      ['auto, standalone, no file: off', {}, undefined],
      ['auto in Kubernetes mode: from the API server', { kubernetes: true }, { source: 'kubernetes' }],
      ['auto with a file: from the file', { policyFile: '/etc/weft/policies.yaml' }, { source: 'file', file: '/etc/weft/policies.yaml' }],
      ['on with a file', { networkPolicy: 'on', policyFile: '/p.yaml' }, { source: 'file', file: '/p.yaml' }],
      ['off in Kubernetes mode', { kubernetes: true, networkPolicy: 'off' }, undefined],
    ])('--network-policy %s', (_, patch, want) => {
      expect(validateConfig({ ...good, ...patch }, outside).networkPolicy).toEqual(want);
    });

    it.each([
      [{ networkPolicy: 'yes' }, '--network-policy: "yes" must be one of auto, on, off'],
      [{ networkPolicy: 'on' }, '--network-policy: on needs a source of policies: --policy-file (standalone) or Kubernetes mode'],
      [{ networkPolicy: 'off', policyFile: '/p.yaml' }, '--policy-file: not used with --network-policy off'],
      [{ kubernetes: true, policyFile: '/p.yaml' }, '--policy-file: standalone only (in Kubernetes mode the policies come from the API server)'],
      [{ policyFile: '' }, '--policy-file: must not be empty'],
    ])('refuses %o', (patch, message) => {
      expect(() => validateConfig({ ...good, ...patch }, outside)).toThrow(message);
    });

    it('says when the host name is no node name', () => {
      expect(() => validateConfig({ ...good, kubernetes: true }, { ...outside, hostname: () => 'under_score' })).toThrow('--node-name: "under_score" (from the host name) is not a Kubernetes node name; give --node-name');
    });
  });

  it('lists every problem at once', () => {
    try {
      validateConfig({ name: '', listen: 'x', peers: ['y_'], mtu: '1', unknown: ['z'] });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const e = err as ConfigError;
      expect(e.code).toBe('ERR_CONFIG_INVALID');
      expect(e.problems.length).toBe(6);
    }
  });
});

describe('the IPAM start-up mode (the same default on every node)', () => {
  it.each([
    ['the first node: no --peer, no seeds', {}, { initPeers: 1 }],
    ['a later node: --peer', { peers: ['198.18.0.2:6784'] }, { join: true }],
    ['a later node with many --peer', { peers: ['198.18.0.2:6784', '198.18.0.3:6784', '198.18.0.4:6784'] }, { join: true }],
    ['--ipam-init-peers given', { peers: ['198.18.0.2:6784'], ipamInitPeers: '3' }, { initPeers: 3 }],
    ['--ipam-init-peers without --peer', { ipamInitPeers: '2' }, { initPeers: 2 }],
    ['--ipam-seed given', { peers: ['198.18.0.2:6784'], ipamSeed: ['0123456789abcdef'] }, { seeds: ['0123456789abcdef'] }],
  ])('%s', (_what, patch, init) => {
    expect(validateConfig({ ...good, peers: [], ...patch }).ipam?.init).toEqual(init);
  });

  it.each([
    [[], undefined, 0, { initPeers: 1 }],
    [[], undefined, 5, { join: true }],
    [[], 4, 0, { initPeers: 4 }],
    [['0123456789abcdef'], undefined, 2, { seeds: ['0123456789abcdef'] }],
  ])('ipamBootstrap(%j, %s, %d)', (seeds, initPeers, peerCount, init) => {
    expect(ipamBootstrap(seeds, initPeers, peerCount)).toEqual(init);
  });
});
