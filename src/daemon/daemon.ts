/**
 * Composition root of a router process. Start order: preflight checks → bridge → TAP (MTU,
 * master, up) → MTU on the bridge and its ports → UDP socket → sleeve → switch → local API.
 * Stop runs in reverse. The bridge and the pods' veths stay when the daemon stops; the TAP goes.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { availableParallelism, networkInterfaces } from 'node:os';
import type { Clock } from '../core/clock.js';
import { WeftError, describeError } from '../core/errors.js';
import { formatHostPort } from '../core/host-port.js';
import { formatPeerId, isPeerName } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import { formatEndpoint } from '../core/net.js';
import { startAll, stopAll, type Startable } from '../core/startable.js';
import type { Netlink } from '../platform/netlink.js';
import { LinuxTap } from '../platform/linux/linux-tap.js';
import { LinuxUdp } from '../platform/linux/linux-udp.js';
import { loadNative } from '../platform/linux/native.js';
import { AeadCipher, PlainCipher } from '../router/crypto/frame-cipher.js';
import { SodiumChaCha } from '../router/crypto/sodium-aead.js';
import { OpenSslChaCha, defaultCryptoThreads } from '../platform/linux/native-aead.js';
import { ipamClusterId, meshPsk, pairPrologue, readSecretFile } from './cluster-secrets.js';
import { Revocation } from './revocation.js';
import { loadRevocationPublicKey } from '../mesh/revocation.js';
import { LearningSwitch } from '../router/learning-switch.js';
import { OverlaySwitch } from '../router/overlay-switch.js';
import { loadOrCreateIdentity } from '../mesh/identity.js';
import { Mesh } from '../mesh/mesh.js';
import { buildMeshGossip, type MeshGossip } from './mesh-gossip.js';
import { RouterReports } from './router-reports.js';
import { MemoryTrim } from './memory-trim.js';
import { buildMeshView } from './mesh-view.js';
import { dialFamily, resolveHost } from '../mesh/host-resolver.js';
import { StunClient } from './stun-client.js';
import { IpamService, ipamOffRoutes } from './ipam-service.js';
import { PodNetwork } from './pod-network.js';
import { PodGuard } from './pod-guard.js';
import { ServiceBridge } from './service-bridge.js';
import { ProcSysctl } from '../platform/linux/proc-sysctl.js';
import type { Sysctl } from '../platform/sysctl.js';
import { cniExecHandler } from './cni-exec.js';
import { NftCli } from '../platform/linux/nft-cli.js';
import { openNft } from '../platform/linux/nft-lib.js';
import type { Nft, NftScripts } from '../platform/nft.js';
import { Sleeve } from '../router/sleeve/sleeve.js';
import { FastPath } from '../router/fastpath/fast-path.js';
import { FAST_PATH_TABLES } from '../router/fastpath/filters.js';
import { overlayMtu } from '../router/sleeve/wire.js';
import { ApiError } from '../api/errors.js';
import { ApiServer, prepareSocketDir } from './api-server.js';
import type { DaemonConfig } from './config.js';
import type { MeshView, StatusReport, VersionInfo } from '../api/types.js';
import { buildStatus, ipamSummary } from './status.js';
import { versionInfo } from './version-info.js';
import { MetricsServer } from './metrics-server.js';
import { Readiness } from './readiness.js';
import { KubernetesMode } from './kubernetes.js';
import { openKube, type KubeApis } from '../k8s/client.js';
import { loadClientNode } from '../k8s/client-node.js';
import type { PolicyEngine } from './policy.js';
import { attachPolicy } from './policy-attach.js';
import { POLICY_FAMILY, POLICY_TABLE, POLICY_TABLE_REF, type PolicySource } from '../policy/model.js';
import { readPodIdentity } from '../api/pod-identity.js';
import type { NetworkPolicyConfig } from './config.js';

/** The fast path's VXLAN device. */
const VXLAN_DEVICE = 'weft-vx';

export interface DaemonComponents {
  logger: Logger;
  clock: Clock;
  netlink: Netlink;
  /** Kernel parameters (default: /proc/sys of the router's namespace). */
  sysctl?: Sysctl;
  /**
   * The router must stop at run time (another router runs with its identity key and started
   * first, `ERR_IDENTITY_IN_USE`); the caller stops it and exits with status 1.
   */
  onFatal?: (err: WeftError) => void;
  /** Where NetworkPolicy objects come from (default: the file or the API server, as configured). */
  policySource?: (context: PolicySourceContext) => PolicySource;
}

/** What a policy source is made from. */
export interface PolicySourceContext {
  config: NetworkPolicyConfig;
  /** Kubernetes mode: the API clients. */
  kube: KubeApis | undefined;
  clock: Clock;
  logger: Logger;
}

/**
 * NetworkPolicy's code (the engine, the compiler to nftables, the sources, js-yaml for the policy
 * file), loaded only when NetworkPolicy is on: a router without it does not carry it.
 */
async function loadPolicy() {
  const [{ PolicyEngine }, { FileAttachmentStore }, { elementDiffScript, fullScript }, { FilePolicySource }, { KubePolicySource }] = await Promise.all([
    import('./policy.js'),
    import('./policy-pods.js'),
    import('../policy/script.js'),
    import('../policy/file-source.js'),
    import('../k8s/policy-source.js'),
  ]);
  /** The policy source of the configuration. */
  const defaultSource = (context: PolicySourceContext): PolicySource => {
    const c = context.config;
    if (c.source === 'file') return new FilePolicySource({ clock: context.clock, logger: context.logger }, { path: c.file });
    // Kubernetes mode always has its API clients (config.ts makes the source 'kubernetes' only then).
    if (context.kube === undefined) throw new WeftError('ERR_POLICY_SOURCE', 'NetworkPolicy from the API server needs Kubernetes mode');
    return new KubePolicySource({ kube: context.kube, clock: context.clock, logger: context.logger });
  };
  return { PolicyEngine, FileAttachmentStore, elementDiffScript, fullScript, defaultSource };
}

export class Daemon {
  private readonly config: DaemonConfig;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly netlink: Netlink;
  private readonly sysctl: Sysctl;
  /** The command until start() has loaded libnftables (in-process), when it can. */
  private nft: Nft & NftScripts = new NftCli();
  private readonly onFatal: ((err: WeftError) => void) | undefined;
  private readonly started: Startable[] = [];
  private tap: LinuxTap | undefined = undefined;
  private udp: LinuxUdp | undefined = undefined;
  private sleeve: Sleeve | undefined = undefined;
  /** The sleeve's cipher (its engine may run a crypto pool: closed with the devices). */
  private frameCipher: AeadCipher | PlainCipher | undefined = undefined;
  private learningSwitch: LearningSwitch | undefined = undefined;
  private mesh: Mesh | undefined = undefined;
  private gossip: MeshGossip | undefined = undefined;
  /** Our report on the "reports" channel, and everyone's (GET /v1/mesh). */
  private routerReports: RouterReports | undefined = undefined;
  private stunClient: StunClient | undefined = undefined;
  private ipam: IpamService | undefined = undefined;
  private revocation: Revocation | undefined = undefined;
  private podNetwork: PodNetwork | undefined = undefined;
  private podGuard: PodGuard | undefined = undefined;
  private policy: PolicyEngine | undefined = undefined;
  private readonly policySource: ((context: PolicySourceContext) => PolicySource) | undefined;
  private kubernetes: KubernetesMode | undefined = undefined;
  private serviceBridge: ServiceBridge | undefined = undefined;
  private api: ApiServer | undefined = undefined;
  private probeTap: LinuxTap | undefined = undefined;
  private fastPath: FastPath | undefined = undefined;
  private fastPathNote = '';
  private overlaySwitch: OverlaySwitch | undefined = undefined;
  private startedAt = 0;
  private build: VersionInfo | undefined = undefined;
  private stopping = false;
  private tapFailed = false;
  private metricsServer: MetricsServer | undefined = undefined;
  /**
   * What /readyz checks (`--metrics-addr`): the router started and not stopping, its TAP working,
   * and with IPAM the pod network ready (IPAM has its ranges, the gateways and the guard are set).
   * Other parts add theirs with `readiness.add(name, check)`.
   */
  readonly readiness = new Readiness();
  private underlayMtu = 0;
  private mtu = 0;

  constructor(components: DaemonComponents, config: DaemonConfig) {
    this.config = config;
    this.log = components.logger;
    this.clock = components.clock;
    this.netlink = components.netlink;
    this.sysctl = components.sysctl ?? new ProcSysctl();
    this.onFatal = components.onFatal;
    this.policySource = components.policySource;
    this.readiness.add('router', () => (this.stopping ? 'the router is stopping' : this.startedAt === 0 ? 'the router is still starting' : this.tapFailed ? 'the TAP device failed; restart the daemon' : undefined));
    this.readiness.add('pods', () => {
      const net = this.podNetwork?.network();
      return net === undefined || net.ready ? undefined : (net.reason ?? 'the pod network is not ready');
    });
  }

  async start(): Promise<void> {
    const c = this.config;
    // Read first: a package without its package.json is refused before anything is made.
    this.build = versionInfo();
    const secret = preflight(c, this.log) ?? Buffer.alloc(32);
    const accepted = c.secretFileAccept.map((f) => readSecretFile(f, this.log));
    // Kubernetes mode only: the API client library, loaded now (see src/k8s/client-node.ts).
    if (c.kubernetes !== undefined) await loadClientNode();
    // Before any device is made: a socket directory others could write is refused at once.
    prepareSocketDir(dirname(c.apiSocket), process.geteuid?.() ?? 0);
    const identity = loadOrCreateIdentity(c.stateDir, c.name);
    if (identity.created) this.log.info('new identity created', { peer: identity.name, stateDir: c.stateDir });
    // Before any device is made: a revoked router refuses to start (ERR_REVOKED).
    const revocation = new Revocation(
      { logger: this.log.child('revocation'), self: identity.name, onFatal: (err) => this.fatal(err), nicknameOf: (peer) => this.gossip?.topology.get(peer)?.nickname },
      { stateDir: c.stateDir, publicKey: c.revocationPubkey === undefined ? undefined : loadRevocationPublicKey(c.revocationPubkey) },
    );
    this.revocation = revocation;
    const native = loadNative();
    native.setSpin(c.spinUs);
    this.nft = (await openNft({ logger: this.log.child('nft') })).nft;

    await this.netlink.ensureBridge(c.bridge);
    this.underlayMtu = c.underlayMtu ?? (await this.detectUnderlayMtu());
    const sealed = !c.plaintext;
    this.mtu = c.overlayMtu ?? overlayMtu(this.underlayMtu, c.listen.family, sealed);

    try {
      this.tap = new LinuxTap({ name: c.tap, vnetHdr: c.vnetHdr, maxFrame: this.mtu + 18, uring: c.tapUring });
      await this.netlink.setMtu(this.tap.name, this.mtu);
      await this.netlink.setMaster(this.tap.name, c.bridge);
      await this.netlink.setUp(this.tap.name);
      await this.applyBridgeMtu();
      await this.netlink.setUp(c.bridge);
      this.udp = new LinuxUdp({ address: c.listen.address, port: c.listen.port });
    } catch (err) {
      this.closeDevices();
      throw err;
    }

    this.sleeve = new Sleeve(
      { udp: this.udp, cipher: this.cipher(), clock: this.clock, logger: this.log.child('sleeve') },
      {
        name: identity.name, id: identity.id, underlayMtu: this.underlayMtu, vnetCapable: c.vnetHdr, heartbeatMs: c.heartbeatMs,
        keyLifetimeMs: 2 * c.rekeyMs,
      },
    );
    // Each peer's path (fast path, direct, relay); the mesh's overlay, and the fast path's owner.
    const overlay = new OverlaySwitch({ sleeve: this.sleeve, clock: this.clock, logger: this.log.child('overlay') });
    this.overlaySwitch = overlay;
    // --advertise with port 0 means the sleeve's port (topology's endpoints and punch candidates alike).
    const advertised = c.advertise.map((e) => formatEndpoint({ address: e.address, port: e.port === 0 ? this.udp!.localPort : e.port }));
    this.mesh = new Mesh(
      {
        identity, psk: meshPsk(secret), clock: this.clock, logger: this.log.child('mesh'), overlay, interfaces: networkInterfaces,
        acceptPsks: accepted.map(meshPsk), isRevoked: (peer) => revocation.isRevoked(peer),
      },
      {
        listenAddress: c.listen.address,
        listenPort: this.udp.localPort,
        udpPort: this.udp.localPort,
        peers: c.peers.map(formatHostPort),
        advertise: advertised,
        pairPrologue: pairPrologue(secret),
        acceptPairPrologues: accepted.map(pairPrologue),
        rekeyAfterMs: c.rekeyMs,
        protocolMax: c.meshProtocolMax,
        release: versionInfo().version,
      },
    );
    revocation.attach(this.mesh);
    // --stun: our endpoint as STUN servers see it, a candidate of kind 'stun'.
    if (c.stun.length > 0) {
      const sleeve = this.sleeve;
      const endpoints = this.mesh.endpoints;
      const stun = new StunClient(
        {
          clock: this.clock,
          logger: this.log.child('stun'),
          resolve: (host) => resolveHost(host, dialFamily(c.listen.address)),
          send: (address, port) => sleeve.stunRequest(address, port),
          setStun: (list) => endpoints.setStun(list),
        },
        { servers: c.stun },
      );
      overlay.onStunMapped((server, mapped) => stun.mapped(server, mapped));
      endpoints.stunReport = () => stun.status();
      this.stunClient = stun;
    }
    this.gossip = buildMeshGossip({ mesh: this.mesh, clock: this.clock, logger: this.log.child('topology') }, {
      identity,
      stateDir: c.stateDir,
      endpoints: advertised,
      onFatal: (err) => this.fatal(err),
    });
    // One API client (credentials loaded once) for discovery and the IPAM blocks.
    const kube = c.kubernetes === undefined ? undefined : openKube(c.kubernetes.kubeconfig);
    if (c.kubernetes !== undefined) {
      const mesh = this.mesh;
      const first = c.advertise[0];
      this.kubernetes = new KubernetesMode(
        {
          clock: this.clock,
          logger: this.log.child('kubernetes'),
          setTargets: (targets) => mesh.setDiscoveredTargets(targets),
          forget: (peer) => this.forgetDeletedNode(peer),
          reachable: (peer) => this.gossip?.routes.reachable().includes(peer) ?? false,
          ...(kube === undefined ? {} : { kube }),
        },
        {
          config: c.kubernetes,
          peerName: identity.name,
          publicKey: identity.publicKey,
          advertise: first === undefined ? undefined : formatEndpoint({ address: first.address, port: first.port === 0 ? this.udp.localPort : first.port }),
          port: this.udp.localPort,
          version: this.build.version,
        },
      );
    }
    if (c.ipam !== undefined) {
      this.ipam = new IpamService(
        { mesh: this.mesh, routes: this.gossip.routes, clock: this.clock, logger: this.log.child('ipam'), identity, ...(kube === undefined ? {} : { kube }) },
        { config: c.ipam, stateDir: c.stateDir, clusterId: ipamClusterId(c.stateDir, [secret, ...accepted], this.log.child('ipam')), kubernetes: c.kubernetes },
      );
      const ipam = this.ipam.ipam;
      // Pods' traffic must never reach a node's VXLAN port (the fast path's device: listen port + 1).
      this.podGuard = new PodGuard(
        { nft: this.nft, netlink: this.netlink, clock: this.clock, logger: this.log.child('pods'), allocations: () => ipam.list(), confirm: (id, ifName) => void ipam.confirm(id, ifName) },
        { bridge: c.bridge, vxlanPort: this.udp.localPort + 1 },
      );
      this.podNetwork = new PodNetwork(
        { ipam, netlink: this.netlink, nft: this.nft, clock: this.clock, logger: this.log.child('pods'), guard: this.podGuard },
        { bridge: c.bridge, mtu: this.mtu, ranges: c.ipam.ranges },
      );
    }
    {
      const ipamService = this.ipam;
      this.routerReports = new RouterReports(
        {
          mesh: this.mesh, topology: this.gossip.topology, clock: this.clock, logger: this.log.child('reports'), signer: identity.signer,
          paths: () => overlay.paths(),
          ipam: () => (ipamService === undefined ? undefined : ipamSummary(ipamService.ipam.status())),
        },
        { self: identity.name, publicKey: identity.publicKey, release: this.build.version },
      );
    }
    // Kubernetes mode: a deleted Node's blocks are reclaimed through the API (every router sees
    // the deletion and tries; exactly one gets each block). Failures are logged by the hook.
    const blocks = this.ipam?.blocks === undefined ? undefined : this.ipam;
    if (this.kubernetes !== undefined && blocks !== undefined) this.kubernetes.onNodeDeleted(async (peer) => void (await blocks.reclaim(peer)));
    if (c.networkPolicy !== undefined) {
      const guard = this.podGuard;
      const { PolicyEngine, FileAttachmentStore, elementDiffScript, fullScript, defaultSource } = await loadPolicy();
      this.policy = new PolicyEngine(
        {
          nft: this.nft,
          source: (this.policySource ?? defaultSource)({ config: c.networkPolicy, kube, clock: this.clock, logger: this.log.child('policy') }),
          clock: this.clock,
          logger: this.log.child('policy'),
          fullScript,
          elementDiffScript,
          attachments: new FileAttachmentStore({ logger: this.log.child('policy') }, { stateDir: c.stateDir }),
          sysctl: this.sysctl,
          live: () => (guard === undefined || guard.notReady() !== undefined ? undefined : guard.status().pods),
        },
        { nodeName: c.kubernetes?.nodeName },
      );
    } else {
      await this.removePolicyTable();
    }
    // Always built: it reports what the bridge has for Services even where it may not change it.
    this.serviceBridge = new ServiceBridge(
      { netlink: this.netlink, sysctl: this.sysctl, clock: this.clock, logger: this.log.child('services') },
      { bridge: c.bridge, enabled: c.serviceBridge, ipv6: (c.ipam?.ranges ?? []).some((r) => r.includes(':')) },
    );
    this.learningSwitch = new LearningSwitch({
      tap: this.tap,
      sleeve: this.sleeve,
      paths: overlay,
      clock: this.clock,
      logger: this.log.child('router'),
      onTapFailure: (errno) => {
        this.tapFailed = true;
        this.log.error('the TAP device failed; restart the daemon to recreate it', { errno });
      },
    }, { udpCoalesce: c.udpCoalesce });
    try {
      this.setUpFastPath(overlay);
    } catch (err) {
      this.closeDevices();
      throw err;
    }
    if (this.fastPath === undefined) await this.removeStaleFastPath();
    this.api = new ApiServer({ logger: this.log.child('api') }, { socketPath: c.apiSocket });
    this.api.route('GET', '/v1/status', async () => {
      await Promise.all([this.fastPath?.refreshCounters(), this.podGuard?.refreshCounters(), this.policy?.refreshCounters()]);
      return this.status();
    });
    if (c.metrics !== undefined) {
      // Loaded only here: prom-client costs a router that serves no metrics ~8 MB of RSS.
      const { WeftMetrics } = await import('./metrics.js');
      const metrics = new WeftMetrics({ build: this.build, processMetrics: true });
      this.metricsServer = new MetricsServer(
        {
          logger: this.log.child('metrics'),
          // Read at scrape time, as `weft status` does; while the router starts: build and process metrics only.
          metrics: { contentType: metrics.contentType, scrape: async () => metrics.scrape(await this.scrapeStatus()) },
          readiness: this.readiness,
        },
        { endpoint: c.metrics },
      );
    }
    this.api.route('GET', '/v1/mesh', () => this.meshView());
    this.api.route('POST', '/v1/forget', (body) => this.forget(body));
    this.api.route('POST', '/v1/revoke', (body) => revocation.revoke(body));
    this.api.route('GET', '/v1/version', () => this.build);
    if (this.ipam !== undefined) this.ipam.routes(this.api);
    else ipamOffRoutes(this.api);
    this.api.routeRaw('POST', '/v1/cni/exec', cniExecHandler(this.log.child('cni'), { socket: c.apiSocket, ipam: this.ipam?.ipam, pods: this.podNetwork, guard: this.podGuard, policy: this.policy }));
    this.api.route('POST', '/v1/cni/attach', (body) => this.attachPod(body));
    this.api.route('POST', '/v1/cni/detach', (body) =>
      this.guardCall(async (g) => {
        const containerId = field(body, 'containerId') as string;
        const ifName = field(body, 'ifName') as string;
        const detached = await g.detach(containerId, ifName);
        if (typeof containerId === 'string' && typeof ifName === 'string') this.policy?.podDetached(containerId, ifName);
        return { detached };
      }),
    );
    this.api.route('GET', '/v1/cni/network', () =>
      this.podNetwork?.network() ?? { ready: false, reason: 'IPAM is off on this router (--ipam-range none)', bridge: c.bridge, mtu: this.mtu, gateways: [] },
    );
    try {
      // The fast path starts before the mesh: after a restart its probes must resume before the
      // peers hear our sleeve again, or they would take the silence for a broken kernel path.
      // IPAM loads its state before the mesh delivers anything on its channel.
      const fast = this.fastPath === undefined ? [] : [this.fastPath];
      // The pod guard adopts its table after the mesh is up (the kernel's table guards the pods
      // meanwhile) and before the API serves the CNI plugin.
      const ipam = this.ipam === undefined ? [] : [this.ipam, this.podNetwork!];
      // NetworkPolicy after the guard (it asks which attachments the guard holds) and before the
      // API: with a source at hand (a file), the policies are in before any pod is served.
      const guard = [...(this.podGuard === undefined ? [] : [this.podGuard]), ...(this.policy === undefined ? [] : [this.policy])];
      // The metrics endpoint first: a port in use fails the start before anything else runs, and
      // the probes have /healthz (and a /readyz that says "starting") while the rest starts.
      const metrics = this.metricsServer === undefined ? [] : [this.metricsServer];
      // Discovery after the mesh: the targets it sets are dialled at the mesh's next tick.
      const kube = this.kubernetes === undefined ? [] : [this.kubernetes];
      // STUN after the mesh (its answers become the mesh's candidates).
      const stun: Startable[] = this.stunClient === undefined ? [] : [this.stunClient];
      // The overlay switch hands the fast path its candidates once it runs.
      // The bridge is set up for Services before pods are served.
      const services = this.serviceBridge;
      const reports = this.routerReports === undefined ? [] : [this.routerReports];
      const trim = new MemoryTrim({ clock: this.clock, logger: this.log.child('memory'), trim: () => native.mallocTrim() });
      await startAll([...metrics, this.sleeve, this.learningSwitch, ...fast, overlay, this.gossip, services, ...ipam, ...reports, revocation, this.mesh, ...stun, ...kube, ...guard, this.api, trim]);
      this.started.push(...metrics, this.sleeve, this.learningSwitch, ...fast, overlay, this.gossip, services, ...ipam, ...reports, revocation, this.mesh, ...stun, ...kube, ...guard, this.api, trim);
    } catch (err) {
      this.closeDevices();
      throw err;
    }
    this.startedAt = this.clock.now();
    this.log.info('weft router started', {
      version: this.build.version,
      commit: this.build.commit,
      peer: identity.name,
      nickname: c.name,
      id: formatPeerId(identity.id),
      listen: formatEndpoint({ address: c.listen.address, port: this.udp.localPort }),
      peers: c.peers.map(formatHostPort),
      encryption: sealed ? this.sleeve.cipherName : 'none',
      vnetHdr: c.vnetHdr,
      // (the TAP takes and gives UDP GSO super-frames: vnet mode on a kernel with TUN_F_USO4/6)
      tapUso: this.tap.uso,
      udpCoalesce: this.learningSwitch.udpCoalesce,
      underlayMtu: this.underlayMtu,
      mtu: this.mtu,
    });
    if (!sealed) this.log.warn('plaintext mode: frames cross the underlay unencrypted and unauthenticated');
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const failures = await stopAll(this.started);
    this.started.length = 0;
    this.closeDevices();
    for (const f of failures) this.log.warn('stop step failed', { err: describeError(f) });
  }

  /** The status report for a scrape, or undefined while the router starts or stops. */
  private async scrapeStatus(): Promise<StatusReport | undefined> {
    if (this.startedAt === 0 || this.stopping) return undefined;
    await Promise.all([this.fastPath?.refreshCounters(), this.podGuard?.refreshCounters(), this.policy?.refreshCounters()]);
    return this.status();
  }

  private fatal(err: WeftError): void {
    this.log.error('stopping: this router cannot go on', { code: err.code, err: err.message });
    this.onFatal?.(err);
  }

  /** GET /v1/mesh: every router of the mesh, from topology and the routers' reports. */
  meshView(): MeshView {
    const gossip = this.gossip;
    const reports = this.routerReports?.reports;
    if (gossip === undefined || reports === undefined) throw new ApiError('ERR_NOT_READY', 'the router is still starting');
    return buildMeshView({
      self: gossip.topology.name,
      records: gossip.topology.peers(),
      reachable: gossip.routes.reachable(),
      report: (name) => reports.get(name),
      reportAgeMs: (name) => reports.ageMs(name),
      protocolOf: (name) => this.mesh?.protocolOf(name),
      revoked: (name) => this.revocation?.isRevoked(name) ?? false,
    });
  }

  status(): StatusReport {
    if (this.sleeve === undefined || this.learningSwitch === undefined || this.overlaySwitch === undefined || this.tap === undefined || this.udp === undefined || this.mesh === undefined) {
      throw new ApiError('ERR_NOT_READY', 'the router is still starting');
    }
    const report = buildStatus({
      config: this.config,
      build: this.build!,
      sleeve: this.sleeve,
      paths: this.overlaySwitch.paths(),
      mesh: this.mesh.status(),
      fastpath: { mode: this.config.fastpath, note: this.fastPathNote, peers: [], ...this.fastPath?.report() },
      ipam: this.ipam === undefined ? undefined : ipamSummary(this.ipam.ipam.status()),
      pods: this.podGuard?.status(),
      kubernetes: this.kubernetes?.status(),
      services: this.serviceBridge!.status(),
      policy: this.policy?.status(),
      learningSwitch: this.learningSwitch,
      gossip: { ...this.gossip?.drops(), ...this.routerReports?.drops() },
      tap: this.tap,
      udp: this.udp,
      uptimeMs: this.clock.now() - this.startedAt,
      underlayMtu: this.underlayMtu,
      mtu: this.mtu,
    });
    return this.revocation === undefined ? report : { ...report, revocation: this.revocation.status() };
  }

  /**
   * POST /v1/cni/attach: the guard takes the port, then NetworkPolicy the pod (when the request
   * names it). A `pod` that is not a well-formed identity is refused (400) before anything is done.
   */
  private async attachPod(body: unknown): Promise<Record<string, never>> {
    const identity = readPodIdentity(field(body, 'pod'));
    if ('problem' in identity) throw new ApiError('ERR_POD_BAD_REQUEST', `attach: ${identity.problem}`);
    const containerId = field(body, 'containerId') as string;
    const ifName = field(body, 'ifName') as string;
    return this.guardCall(async (g) => {
      const guarded = await g.attach(containerId, ifName, field(body, 'mac') as string);
      await attachPolicy(this.policy, this.log.child('policy'), { containerId, ifName, pod: identity.pod, guarded });
      return {};
    });
  }

  /** --network-policy off: the table an earlier run left goes (its rules would isolate pods nobody updates). */
  private async removePolicyTable(): Promise<void> {
    try {
      if ((await this.nft.listTable(POLICY_FAMILY, POLICY_TABLE)) === undefined) return;
      await this.nft.deleteTable(POLICY_FAMILY, POLICY_TABLE);
      this.log.info('NetworkPolicy is off: removed the policy table of an earlier run', { table: POLICY_TABLE_REF });
    } catch (err) {
      this.log.warn('NetworkPolicy is off but the policy table of an earlier run could not be removed', { table: POLICY_TABLE_REF, err: describeError(err) });
    }
  }

  /** A call to the pod guard from the API (its refusals are answered with their codes' statuses). */
  private async guardCall<T>(fn: (g: PodGuard) => Promise<T>): Promise<T> {
    const g = this.podGuard;
    if (g === undefined) throw new ApiError('ERR_IPAM_NOT_READY', 'pods are off on this router (--ipam-range none)');
    return fn(g);
  }

  /** The kernel fast path, when configured and possible here (owned by the overlay switch); otherwise a note says why not. */
  private setUpFastPath(overlay: OverlaySwitch): void {
    const c = this.config;
    if (c.fastpath === 'off') {
      this.fastPathNote = 'off (--fastpath=off)';
      return;
    }
    if (c.listen.family !== 4 || c.listen.address === '0.0.0.0') {
      this.fastPathNote = 'unavailable: the fast path needs a specific IPv4 --listen address';
      return;
    }
    this.probeTap = new LinuxTap({ name: 'weft-probe', vnetHdr: false, maxFrame: this.mtu + 18 });
    this.fastPath = new FastPath(
      {
        netlink: this.netlink,
        nft: this.nft,
        probeTap: this.probeTap,
        clock: this.clock,
        logger: this.log.child('fastpath'),
        macs: this.gossip!.macs,
        owner: overlay,
      },
      {
        selfId: this.sleeve!.selfId,
        bridge: c.bridge,
        sleeveTap: c.tap,
        vxlan: { name: VXLAN_DEVICE, vni: 0x7765, port: this.udp!.localPort + 1, local: c.listen.address, mtu: this.underlayMtu - 50 },
        maxFrame: this.mtu + 14,
        encrypted: !c.plaintext,
        trusted: c.trustedSubnets,
      },
    );
    overlay.attach(this.fastPath);
    this.fastPathNote = c.plaintext ? 'auto' : c.trustedSubnets.length > 0 ? 'auto (trusted subnets only: the cluster encrypts)' : 'auto, but no peer qualifies: the cluster encrypts, no --trusted-subnets, and this kernel has no IPsec or WireGuard';
  }

  /**
   * Without a fast path, what an earlier run with one left in the kernel goes: its VXLAN device
   * (which would keep carrying pods' frames to peers this run does not watch) and its nftables
   * tables. Failures are logged; none stops the start.
   */
  private async removeStaleFastPath(): Promise<void> {
    try {
      if ((await this.netlink.getLink(VXLAN_DEVICE)) !== undefined) {
        await this.netlink.deleteLink(VXLAN_DEVICE);
        this.log.info('removed the VXLAN device of an earlier run with the fast path', { device: VXLAN_DEVICE });
      }
    } catch (err) {
      this.log.warn('cannot remove the VXLAN device of an earlier run', { device: VXLAN_DEVICE, err: describeError(err) });
    }
    for (const [family, table] of FAST_PATH_TABLES) {
      await this.nft.deleteTable(family, table).catch((err: unknown) => this.log.debug('cannot remove a fast path table', { table, err: describeError(err) }));
    }
  }

  private async forget(body: unknown): Promise<{ forgotten: string; ipam: string }> {
    const peer = typeof body === 'object' && body !== null ? (body as { peer?: unknown }).peer : undefined;
    const gossip = this.gossip;
    if (gossip === undefined) throw new ApiError('ERR_NOT_READY', 'the router is still starting');
    if (typeof peer !== 'string' || peer === '') throw new ApiError('ERR_BAD_REQUEST', 'forget: give {"peer": NAME} with a peer name or nickname');
    const records = gossip.topology.records();
    const matches = records.filter((r) => r.name === peer || r.nickname === peer);
    // Kubernetes mode: a router the mesh never saw (or forgot) may still hold blocks.
    if (matches.length === 0 && this.ipam?.ipam.external === true && isPeerName(peer)) return { forgotten: peer, ipam: await this.reclaimBlocks(peer) };
    if (matches.length === 0) throw new ApiError('ERR_NOT_FOUND', `forget: no peer named "${peer}" in the topology`);
    if (matches.length > 1) throw new ApiError('ERR_BAD_REQUEST', `forget: the nickname "${peer}" is ambiguous (${matches.map((m) => m.name).join(', ')}); give the peer name`);
    const name = matches[0]!.name;
    if (name === gossip.topology.name) throw new ApiError('ERR_BAD_REQUEST', 'forget: a router cannot forget itself');
    const force = typeof body === 'object' && body !== null && (body as { force?: unknown }).force === true;
    if (!force && gossip.routes.reachable().includes(name)) {
      throw new ApiError('ERR_PEER_REACHABLE', `forget: ${name} is still reachable; stop it first (its IPAM ranges would be taken while it uses them), or use --force`);
    }
    const ipamOnly = !gossip.forget(name);
    if (ipamOnly && this.ipam === undefined) throw new ApiError('ERR_BAD_REQUEST', `forget: ${name} is already forgotten`);
    return { forgotten: name, ipam: await this.forgetIpam(name) };
  }

  /**
   * The IPAM part of a forget. Ring: the tombstone is signed by this router, which becomes the
   * peer's heir: it takes the peer's ranges over once the peer has stayed unreachable
   * (gossip/ipam), then holds them. Kubernetes mode: the peer's blocks are reclaimed through the
   * API server at once.
   */
  private async forgetIpam(name: string): Promise<string> {
    if (this.ipam === undefined) return 'off';
    if (this.ipam.ipam.external) return this.reclaimBlocks(name);
    try {
      this.ipam.ipam.forget(name);
      return 'its ranges come to this router once it stays unreachable';
    } catch (err) {
      this.log.warn('forget: IPAM could not reclaim the ranges', { peer: name, err: describeError(err) });
      return `not reclaimed: ${describeError(err)}`;
    }
  }

  /**
   * A Node that carried `peer` was deleted (Kubernetes mode): forgotten as `weft forget` does
   * (topology, MAC owners, the mesh's targets and keys), without its refusal of a reachable peer.
   * Its IPAM ranges are reclaimed through the API by the listeners of `onNodeDeleted`, not here:
   * every router sees the deletion, and only one may take the ranges.
   */
  private forgetDeletedNode(peer: string): string {
    const gossip = this.gossip;
    if (gossip === undefined) return 'not forgotten: the router is still starting';
    if (peer === gossip.topology.name) return 'not forgotten: it is this router';
    return gossip.forget(peer) ? 'forgotten from the topology' : 'not in the topology (already forgotten or never seen)';
  }

  /** Kubernetes mode (undefined when standalone): its `onNodeDeleted` hook, the API's clients. */
  get kubernetesMode(): KubernetesMode | undefined {
    return this.kubernetes;
  }

  /** Kubernetes mode: the blocks of `peer` taken over through the API server, as forget's answer. */
  private async reclaimBlocks(peer: string): Promise<string> {
    try {
      const r = await this.ipam!.reclaim(peer);
      const parts = [`${r.taken.length} block(s) reclaimed here`];
      if (r.lost.length > 0) parts.push(`${r.lost.length} taken over by another router first`);
      if (r.failed.length > 0) parts.push(`${r.failed.length} not written (the API server failed; forget again)`);
      return parts.join(', ');
    } catch (err) {
      this.log.warn('forget: the blocks could not be reclaimed', { peer, err: describeError(err) });
      return `not reclaimed: ${describeError(err)}`;
    }
  }

  private cipher(): AeadCipher | PlainCipher {
    const c = this.config;
    if (c.plaintext) this.frameCipher = new PlainCipher();
    else if (c.aead === 'libsodium') this.frameCipher = new AeadCipher(new SodiumChaCha());
    else this.frameCipher = new AeadCipher(new OpenSslChaCha({ threads: c.cryptoThreads ?? defaultCryptoThreads(availableParallelism()) }));
    return this.frameCipher;
  }

  private closeDevices(): void {
    // (the crypto pool's threads are joined; nothing seals after the sleeve stopped)
    this.frameCipher?.close();
    this.frameCipher = undefined;
    this.probeTap?.close();
    this.probeTap = undefined;
    this.udp?.close();
    this.tap?.close();
    this.udp = undefined;
    this.tap = undefined;
  }

  private async detectUnderlayMtu(): Promise<number> {
    const c = this.config;
    const any = c.listen.address === '0.0.0.0' || c.listen.address === '::';
    const link = any ? undefined : await this.netlink.linkWithAddress(c.listen.address);
    if (link !== undefined) return link.mtu;
    const first = c.peers.find((p) => p.family !== 0);
    if (first !== undefined) {
      const route = await this.netlink.routeGet(first.host);
      if (route?.mtu !== undefined) return route.mtu;
    }
    this.log.warn('cannot tell the underlay MTU; assuming 1500 (set --underlay-mtu)');
    return 1500;
  }

  /** Every port of the bridge (pods' host veths) carries the overlay MTU, like the TAP. */
  private async applyBridgeMtu(): Promise<void> {
    for (const port of await this.netlink.bridgePorts(this.config.bridge)) {
      if (port.mtu !== this.mtu) {
        try {
          await this.netlink.setMtu(port.name, this.mtu);
        } catch (err) {
          this.log.warn('cannot set the overlay MTU on a bridge port', { port: port.name, err: describeError(err) });
        }
      }
    }
    await this.netlink.setMtu(this.config.bridge, this.mtu);
  }
}

/** Checks what a start needs and returns the cluster key (undefined in plaintext mode). */
function preflight(c: DaemonConfig, log: Logger): Buffer | undefined {
  if (!hasNetAdmin()) {
    throw new WeftError('ERR_NOT_ROOT', 'weft launch needs root (or CAP_NET_ADMIN) to create the bridge, the TAP device and the data socket; run it with sudo');
  }
  if (!existsSync('/dev/net/tun')) {
    throw new WeftError('ERR_NO_TUN', '/dev/net/tun does not exist: load the tun module (modprobe tun) or, in a container, pass the device through');
  }
  // In plaintext mode a secret is optional; when given, it still authenticates the mesh.
  return c.secretFile === undefined ? undefined : readSecretFile(c.secretFile, log);
}

function field(body: unknown, name: string): unknown {
  return typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[name] : undefined;
}


function hasNetAdmin(): boolean {
  if (process.geteuid?.() === 0) return true;
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
    return m !== null && (BigInt(`0x${m[1]}`) & (1n << 12n)) !== 0n;
  } catch {
    return false;
  }
}
