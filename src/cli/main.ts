#!/usr/bin/env node
/**
 * weft command line: `weft launch` runs a router in the foreground; the other commands talk to a
 * running router over its local API socket. Exit codes: 0 ok, 1 runtime failure, 2 bad usage.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { ConfigError, WeftError, describeError } from '../core/errors.js';
import { defaultOf } from '../daemon/options.js';
import { callApi, getMesh } from '../api/client.js';
import { ApiRefusal } from '../api/errors.js';
import { didYouMean } from '../core/did-you-mean.js';
import { registerGraph } from './graph-command.js';
import type {
  ForgetRequest,
  ForgetResponse,
  IpamAllocateRequest,
  IpamAllocateResponse,
  IpamAllocationsResponse,
  IpamReleaseRequest,
  IpamReleaseResponse,
  IpamStatus,
  StatusReport,
} from '../api/types.js';
import type { Daemon } from '../daemon/daemon.js';
import { releaseJournalDir } from '../api/paths.js';
import { addLaunchOptions, launchRawConfig } from './launch-options.js';
import { addConfigCommand } from './config-command.js';
import { addRevocationCommands } from './revoke.js';
import { registerVersion } from './version-command.js';
import { applyRouterRuntime } from './router-runtime.js';

// Each command imports what only it uses when it runs (`await import`), so a router does not carry
// the other commands' code (status formatting, the CNI installer) and loads the daemon only once,
// after it has run itself again under its memory settings (router-runtime.ts).
const DEFAULT_SOCKET = defaultOf('apiSocket');
const DEFAULT_STATE_DIR = defaultOf('stateDir');

async function launch(opts: Record<string, unknown>, cmd: Command): Promise<void> {
  // First, before anything is opened: the router's memory settings (may run this process again in place).
  applyRouterRuntime((err) => process.stderr.write(`weft: running without the router's memory settings: ${err instanceof Error ? err.message : String(err)}\n`));
  const raw = launchRawConfig(opts, cmd);
  const [{ validateConfig }, { createLogger }, { systemClock }, { Daemon }, { IpNetlink }] = await Promise.all([
    import('../daemon/config.js'),
    import('../core/logger.js'),
    import('../core/clock.js'),
    import('../daemon/daemon.js'),
    import('../platform/linux/ip-netlink.js'),
  ]);
  const config = validateConfig(raw);
  const logger = createLogger({ level: config.logLevel });
  let stopping = false;
  const daemon: Daemon = new Daemon(
    {
      logger,
      clock: systemClock,
      netlink: new IpNetlink(),
      // Another router runs with this identity key and started first: stop, exit 1.
      onFatal: (err) => {
        if (stopping) return;
        stopping = true;
        process.stderr.write(`weft: ${err.message}\n`);
        void daemon.stop().finally(() => process.exit(1));
      },
    },
    config,
  );
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info('stopping', { signal });
    void daemon.stop().finally(() => process.exit(0));
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('uncaughtException', (err) => {
    logger.error('fatal: uncaught exception', { err: describeError(err), stack: err.stack });
    process.exit(1);
  });
  await daemon.start();
}

/** The JSON of a conflist file for `cni-install --conflist`; a file that cannot be read or parsed is a ConfigError naming it. */
function readConflist(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([`--conflist ${file}: ${describeError(err)}`], 'weft cni-install options');
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new ConfigError([`--conflist ${file}: not JSON (${describeError(err)})`], 'weft cni-install options');
  }
}

async function status(section: string | undefined, opts: { json?: boolean; socket: string }): Promise<void> {
  if (section !== undefined && !STATUS_SECTIONS.includes(section)) {
    const near = didYouMean(section, STATUS_SECTIONS);
    throw new ConfigError([`weft status: unknown section "${section}" (${near === undefined ? '' : `did you mean "${near}"? `}sections: ${STATUS_SECTIONS.join(', ')})`], 'weft status');
  }
  if (section === 'peers' || section === 'ipam') {
    await meshStatus(section, opts);
    return;
  }
  const report = (await callApi(opts.socket, 'GET', '/v1/status')) as StatusReport;
  const [{ formatPolicyStatus, formatStatus }, { statusJson }] = await Promise.all([import('./format-status.js'), import('./format-mesh.js')]);
  if (section === 'policy') {
    // Off: the JSON says so rather than being empty.
    process.stdout.write(opts.json === true ? `${JSON.stringify(report.policy ?? { enabled: false }, null, 2)}\n` : `${formatPolicyStatus(report.policy)}\n`);
    return;
  }
  process.stdout.write(opts.json === true ? `${JSON.stringify(statusJson(report), null, 2)}\n` : `${formatStatus(report)}\n`);
}

const STATUS_SECTIONS = ['policy', 'peers', 'ipam'];

/** `weft status peers` and `weft status ipam`: the whole mesh, from every router's report. */
async function meshStatus(section: 'peers' | 'ipam', opts: { json?: boolean; socket: string }): Promise<void> {
  const view = await getMesh(opts.socket);
  const { formatMeshIpam, formatMeshPeers, meshIpamJson, meshPeersJson } = await import('./format-mesh.js');
  if (section === 'peers') {
    process.stdout.write(opts.json === true ? `${JSON.stringify(meshPeersJson(view), null, 2)}\n` : `${formatMeshPeers(view)}\n`);
    return;
  }
  // Who owns what comes from this router's ring (also of owners gone from topology); IPAM off: none.
  let ipam: IpamStatus | undefined;
  try {
    ipam = (await callApi(opts.socket, 'GET', '/v1/ipam/status')) as IpamStatus;
  } catch (err) {
    if (!(err instanceof ApiRefusal)) throw err;
    ipam = undefined;
  }
  process.stdout.write(opts.json === true ? `${JSON.stringify(meshIpamJson(view, ipam), null, 2)}\n` : `${formatMeshIpam(view, ipam)}\n`);
}

export async function main(argv: string[]): Promise<number> {
  const program = new Command('weft')
    .description('weft: a userspace overlay network (encrypted UDP sleeve between routers)')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  registerVersion(program);

  addLaunchOptions(program.command('launch').description('run a router in the foreground'))
    .allowUnknownOption()
    .allowExcessArguments()
    .action(async (opts: Record<string, unknown>, cmd: Command) => launch(opts, cmd));

  addConfigCommand(program);

  program
    .command('status')
    .description(
      "show a running router's peers, traffic and drops; `weft status peers`: every router of the mesh with its connections (path, round trip); " +
        '`weft status ipam`: per node its share of each range, free, used, quarantined, unreachable owners marked; ' +
        '`weft status policy`: the NetworkPolicies in force on this node, the pods they select, their counters',
    )
    .argument('[section]', 'peers: the whole mesh; ipam: every node\'s IPAM share; policy: only NetworkPolicy')
    .option('--json', 'machine-readable output')
    .option('--socket <path>', 'API socket of the router', DEFAULT_SOCKET)
    .action(async (section: string | undefined, opts: { json?: boolean; socket: string }) => status(section, opts));

  program
    .command('forget')
    .description('remove a peer that left the cluster, everywhere: from the topology, and its IPAM ranges pass to one live peer')
    .argument('<peer>', 'peer name or nickname')
    .option('--force', 'even while the peer is still reachable (it is then fenced: it can no longer allocate)')
    .option('--socket <path>', 'API socket of the router', DEFAULT_SOCKET)
    .action(async (peer: string, opts: { socket: string; force?: boolean }) => {
      const request: ForgetRequest = { peer, force: opts.force === true };
      const r = (await callApi(opts.socket, 'POST', '/v1/forget', request)) as ForgetResponse;
      process.stdout.write(`forgotten: ${r.forgotten}${r.ipam === undefined ? '' : ` (IPAM: ${r.ipam})`}\n`);
    });

  program
    .command('identity')
    .description("print this host's peer name (creating the identity key if there is none yet), e.g. for --ipam-seed")
    .option('--state-dir <dir>', 'where the identity key is kept', DEFAULT_STATE_DIR)
    .option('--name <nickname>', 'nickname (only used when the key is created)', 'weft')
    .action(async (opts: { stateDir: string; name: string }) => {
      const { loadOrCreateIdentity } = await import('../mesh/identity.js');
      const id = loadOrCreateIdentity(opts.stateDir, opts.name);
      process.stdout.write(`${id.name}\n`);
    });

  program
    .command('cni-install')
    .description('install the CNI plugin (a PATH-free wrapper) into the CNI bin dir and its conflist (weft, then portmap, then bandwidth if asked) into the conf dir, atomically')
    .option('--bin-dir <dir>', 'CNI bin dir', '/opt/cni/bin')
    .option('--conf-dir <dir>', 'CNI conf dir (the conflist is named to sort first)', '/etc/cni/net.d')
    .option('--socket <path>', "the router's API socket", DEFAULT_SOCKET)
    .option('--state-dir <dir>', "the router's --state-dir (releases are journaled under it while the router is down)", DEFAULT_STATE_DIR)
    .option('--name <network>', 'network name', 'weft')
    .option('--no-portmap', 'do not chain portmap')
    .option('--bandwidth', 'chain the bandwidth plugin last (per-pod limits from the kubernetes.io/ingress-bandwidth and egress-bandwidth annotations)', false)
    .option('--runtime-dir <dir>', "copy this Node and the plugin's code into a directory under DIR and have weft-node run that copy (installing from a container onto its host)")
    .option('--conflist <file>', "install this conflist (JSON, e.g. deploy's ConfigMap) instead of making one; its first plugin must be weft and pass the plugin's config check")
    .action(async (opts: { binDir: string; confDir: string; socket: string; stateDir: string; name: string; portmap: boolean; bandwidth: boolean; conflist?: string; runtimeDir?: string }, cmd: Command) => {
      const { installCni } = await import('../cni/install.js');
      if (opts.conflist !== undefined) {
        // The conflist says these itself: a flag that would be silently overridden is refused.
        const clash = ['socket', 'stateDir', 'name', 'portmap', 'bandwidth'].filter((k) => cmd.getOptionValueSource(k) === 'cli');
        if (clash.length > 0) throw new ConfigError(clash.map((k) => `--${k === 'stateDir' ? 'state-dir' : k === 'portmap' ? 'no-portmap' : k} cannot be given with --conflist (the conflist says it)`), 'weft cni-install options');
      }
      const given = opts.conflist === undefined ? undefined : { conflist: readConflist(opts.conflist) };
      const runtimeDir = opts.runtimeDir === undefined ? undefined : { runtimeDir: opts.runtimeDir };
      const r = installCni({ binDir: opts.binDir, confDir: opts.confDir, socket: opts.socket, journalDir: releaseJournalDir(opts.stateDir), name: opts.name, portmap: opts.portmap, bandwidth: opts.bandwidth, ...given, ...runtimeDir });
      process.stdout.write(`installed ${r.wrapper} and ${r.conflist}\n`);
      if (r.runtime !== undefined) process.stdout.write(`${r.wrapper} runs ${r.runtime.dir}${r.runtime.copied ? '' : ' (already there)'}${r.runtime.pruned.length > 0 ? `; removed ${r.runtime.pruned.join(', ')}` : ''}\n`);
      if (r.shadowedBy.length > 0) process.stderr.write(`warning: ${r.shadowedBy.join(', ')} sort(s) before ${r.conflist}; runtimes use the first file\n`);
      if (r.chainedMissing.length > 0) process.stderr.write(`warning: ${r.chainedMissing.join(', ')} not in ${opts.binDir}; every ADD fails until installed\n`);
    });

  addRevocationCommands(program, DEFAULT_SOCKET);

  const ipam = program.command('ipam').description("the cluster-wide IPAM as this router sees it (default: status)");
  ipam
    .command('status', { isDefault: true })
    .description('who owns which ranges; free, allocated, reserved and quarantined addresses')
    .option('--json', 'machine-readable output')
    .option('--socket <path>', 'API socket of the router', DEFAULT_SOCKET)
    .action(async (opts: { json?: boolean; socket: string }) => {
      const r = (await callApi(opts.socket, 'GET', '/v1/ipam/status')) as IpamStatus;
      const [{ formatIpamStatus }, { ipamStatusJson }] = await Promise.all([import('./format-status.js'), import('./format-mesh.js')]);
      process.stdout.write(opts.json === true ? `${JSON.stringify(ipamStatusJson(r), null, 2)}\n` : `${formatIpamStatus(r)}\n`);
    });
  ipam
    .command('list')
    .description("this router's allocations")
    .option('--json', 'machine-readable output')
    .option('--socket <path>', 'API socket of the router', DEFAULT_SOCKET)
    .action(async (opts: { json?: boolean; socket: string }) => {
      const r = (await callApi(opts.socket, 'GET', '/v1/ipam/allocations')) as IpamAllocationsResponse;
      if (opts.json === true) {
        process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
        return;
      }
      for (const a of r.allocations) process.stdout.write(`${a.containerId} ${a.ifName} ${a.addresses.join(' ')}\n`);
    });
  ipam
    .command('allocate')
    .description('allocate (or look up) the addresses of a container interface')
    .argument('<container-id>')
    .option('--if <name>', 'interface name', 'eth0')
    .option('--socket <path>', 'API socket of the router', DEFAULT_SOCKET)
    .action(async (containerId: string, opts: { if: string; socket: string }) => {
      const request: IpamAllocateRequest = { containerId, ifName: opts.if };
      const r = (await callApi(opts.socket, 'POST', '/v1/ipam/allocate', request)) as IpamAllocateResponse;
      process.stdout.write(`${r.addresses.map((a) => `${a.address}/${a.prefixLength}`).join(' ')}\n`);
    });
  ipam
    .command('release')
    .description("release a container's addresses (all its interfaces unless --if)")
    .argument('<container-id>')
    .option('--if <name>', 'only this interface')
    .option('--socket <path>', 'API socket of the router', DEFAULT_SOCKET)
    .action(async (containerId: string, opts: { if?: string; socket: string }) => {
      const request: IpamReleaseRequest = { containerId, ifName: opts.if };
      const r = (await callApi(opts.socket, 'POST', '/v1/ipam/release', request)) as IpamReleaseResponse;
      process.stdout.write(`released: ${r.released.length === 0 ? 'nothing' : r.released.join(' ')}\n`);
    });

  registerGraph(program);

  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
      return 2;
    }
    if (err instanceof ConfigError) {
      process.stderr.write(`weft: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`weft: ${err instanceof WeftError ? err.message : describeError(err)}\n`);
    return 1;
  }
}

const code = await main(process.argv.slice(2));
if (code !== 0) process.exit(code);
