/**
 * The DaemonSet as the kubelet runs it on a node: the router's args (with the env the pod gets:
 * the downward API and the ConfigMap) go through the CLI's own parser and validateConfig, and
 * the paths they name are the volumes the pod mounts; the init container's command installs the
 * ConfigMap's conflist with the built CLI (in temp directories standing for the node's).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseLaunch } from '../daemon/parse-launch.js';
import { SERVICE_ACCOUNT_DIR, validateConfig, type DaemonConfig } from '../../src/daemon/config.js';
import {
  CONFLIST_KEY,
  deployConflist,
  deployContainer,
  deployContainerArgs,
  deployContainerEnv,
  deployObject,
  deployPodSpec,
  deploySettings,
  expand,
  loadDeployManifests,
  type V1ConfigMap,
  type V1Container,
  type V1DaemonSet,
  type V1Secret,
  type V1ServiceAccount,
  type V1Volume,
  type V1VolumeMount,
} from '../../lab/deploy-manifests.js';

const manifests = loadDeployManifests();
const spec = deployPodSpec(manifests);
const router = deployContainer('weft', manifests);
const init = deployContainer('install-cni', manifests);
const routerArgs = router.args ?? [];
const initArgs = init.args ?? [];
const facts = { nodeName: 'node-1.example', hostIP: '198.18.0.1' };


/** What a pod of the DaemonSet sees: its env, a service account, a host name that is not the node's. */
function podSurroundings(env: Record<string, string>) {
  const files: Record<string, string> = { [`${SERVICE_ACCOUNT_DIR}/token`]: 'a-token', [`${SERVICE_ACCOUNT_DIR}/namespace`]: 'kube-system\n' };
  return { env: { ...env, KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' }, readFile: (p: string) => files[p], hostname: () => 'weft-x7k2p' };
}

function routerConfig(): DaemonConfig {
  const env = deployContainerEnv('weft', facts, manifests);
  return validateConfig(parseLaunch(deployContainerArgs('weft', facts, manifests)), podSurroundings(env));
}

/** The volume mounted at exactly `path` in `container`, with its volume. */
function mountAt(container: V1Container, path: string): { mount: V1VolumeMount; volume: V1Volume } | undefined {
  const mount = (container.volumeMounts ?? []).find((m) => m.mountPath === path);
  if (mount === undefined) return undefined;
  return { mount, volume: (spec.volumes ?? []).find((v) => v.name === mount.name)! };
}

describe('the router container', () => {
  it('its args are valid weft launch options, in Kubernetes mode on the pod\'s node', () => {
    const c = routerConfig();
    const settings = deploySettings(manifests);
    expect(c.kubernetes).toEqual({ kubeconfig: undefined, nodeName: 'node-1.example', namespace: 'kube-system', detected: false });
    expect(c.name).toBe('node-1.example');
    expect(c.listen).toEqual({ address: '198.18.0.1', port: 6784, family: 4 });
    expect(c.advertise).toEqual([{ address: '198.18.0.1', port: 6784, family: 4 }]);
    expect(c.peers).toEqual([]);
    expect(c.plaintext).toBe(false);
    expect(c.ipam?.ranges).toEqual([settings['ipam-range']]);
    expect(c.ipam?.ownership).toBe('kubernetes');
    expect(c.logLevel).toBe(settings['log-level']);
    expect(c.fastpath).toBe(settings.fastpath);
    expect(c.metrics).toEqual({ address: '198.18.0.1', port: 6782, family: 4 });
  });

  it('every ConfigMap setting reaches the router through an env var its args use', () => {
    const env = deployContainerEnv('weft', facts, manifests);
    const refs = (router.env ?? []).flatMap((e) => (e.valueFrom?.configMapKeyRef === undefined ? [] : [{ name: e.name, ref: e.valueFrom.configMapKeyRef }]));
    expect(refs.map((e) => e.ref.key).sort()).toEqual(Object.keys(deploySettings(manifests)).sort());
    for (const e of refs) {
      expect(e.ref.name).toBe('weft-config');
      expect(routerArgs.some((a) => a.includes(`$(${e.name})`)), e.name).toBe(true);
      expect(env[e.name]).toBe(deploySettings(manifests)[e.ref.key]);
    }
    // Every $(VAR) the args name is defined (an undefined one would reach weft as written).
    for (const a of routerArgs) expect(expand(a, env)).not.toMatch(/\$\(/);
  });

  it('a changed setting changes the router: a range and a log level of the ConfigMap', () => {
    const edited = structuredClone(manifests);
    const data = (edited.find((m) => m.object.kind === 'ConfigMap')!.object as V1ConfigMap).data!;
    data['ipam-range'] = '10.244.0.0/16';
    data['log-level'] = 'debug';
    const c = validateConfig(parseLaunch(deployContainerArgs('weft', facts, edited)), podSurroundings(deployContainerEnv('weft', facts, edited)));
    expect(c.ipam?.ranges).toEqual(['10.244.0.0/16']);
    expect(c.logLevel).toBe('debug');
    data['ipam-range'] = '10.244.0.0/33';
    expect(() => validateConfig(parseLaunch(deployContainerArgs('weft', facts, edited)), podSurroundings(deployContainerEnv('weft', facts, edited)))).toThrow(/--ipam-range/);
  });

  it('NODE_NAME comes from spec.nodeName and HOST_IP from status.hostIP (downward API)', () => {
    const byName = new Map((router.env ?? []).map((e) => [e.name, e]));
    expect(byName.get('NODE_NAME')?.valueFrom).toEqual({ fieldRef: { fieldPath: 'spec.nodeName' } });
    expect(byName.get('HOST_IP')?.valueFrom).toEqual({ fieldRef: { fieldPath: 'status.hostIP' } });
  });

  it('the secret file is a key of the Secret, mounted read-only for root alone', () => {
    const c = routerConfig();
    const m = mountAt(router, dirname(c.secretFile!))!;
    expect(m.mount.readOnly).toBe(true);
    expect(m.volume.secret?.defaultMode).toBe(0o400);
    const secret = deployObject<V1Secret>('Secret', m.volume.secret?.secretName ?? '', manifests);
    expect(Object.keys(secret.stringData ?? {})).toEqual([c.secretFile!.slice(dirname(c.secretFile!).length + 1)]);
  });

  it("the Secret's placeholder is refused by the router's secret check (under 16 bytes)", async () => {
    const { clusterKeyFromSecret } = await import('../../src/router/crypto/cluster-secret.js');
    const secret = deployObject<V1Secret>('Secret', 'weft-secret', manifests);
    const placeholder = Object.values(secret.stringData ?? {})[0]!;
    expect(() => clusterKeyFromSecret(Buffer.from(placeholder), 'the Secret')).toThrow(/needs at least 16/);
    expect(readFileSync(join('deploy', '02-secret.yaml'), 'utf8')).toContain(`s|${placeholder}|$(head -c 32 /dev/urandom | base64)|`);
  });

  it('the state dir and the API socket dir are host paths mounted at the same path', () => {
    const c = routerConfig();
    for (const dir of [c.stateDir, dirname(c.apiSocket)]) {
      const m = mountAt(router, dir);
      expect(m, dir).toBeDefined();
      expect(m!.volume.hostPath).toEqual({ path: dir, type: 'DirectoryOrCreate' });
    }
  });

  it('/dev/net/tun is the host character device', () => {
    expect(mountAt(router, '/dev/net/tun')!.volume.hostPath).toEqual({ path: '/dev/net/tun', type: 'CharDevice' });
  });

  it('probes: /healthz for liveness and /readyz for readiness, on the --metrics-addr port', () => {
    const c = routerConfig();
    const port = (router.ports ?? []).find((p) => p.name === router.livenessProbe?.httpGet?.port);
    expect(port).toEqual({ name: 'metrics', containerPort: c.metrics!.port, protocol: 'TCP' });
    expect(router.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
    // No host: with hostNetwork the kubelet probes the node's address, where the endpoint listens.
    expect(router.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'metrics' });
    expect(c.metrics!.address).toBe(facts.hostIP);
  });

  it('the declared ports are the mesh (TCP) and sleeve (UDP) port of --listen', () => {
    const c = routerConfig();
    const ports = (router.ports ?? []).filter((p) => p.name !== 'metrics');
    expect(ports).toEqual([
      { name: 'mesh', containerPort: c.listen.port, protocol: 'TCP' },
      { name: 'sleeve', containerPort: c.listen.port, protocol: 'UDP' },
    ]);
  });

  it('privileged (stated reasons in the manifest), resource requests and no limits', () => {
    expect(router.securityContext).toEqual({ privileged: true });
    expect(Object.keys(router.resources ?? {})).toEqual(['requests']);
    expect(Object.keys(router.resources?.requests ?? {}).sort()).toEqual(['cpu', 'memory']);
  });
});

describe('the pod', () => {
  const ds = deployObject<V1DaemonSet>('DaemonSet', 'weft', manifests);

  it('runs on every node: host network and PID namespace, tolerates every taint, node-critical', () => {
    expect(spec.hostNetwork).toBe(true);
    expect(spec.hostPID).toBe(true);
    expect(spec.tolerations).toEqual([{ operator: 'Exists' }]);
    expect(spec.priorityClassName).toBe('system-node-critical');
    expect(spec.terminationGracePeriodSeconds).toBeGreaterThan(0);
    expect(ds.spec?.updateStrategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } });
    expect(ds.spec?.selector.matchLabels).toEqual(ds.spec?.template.metadata?.labels);
  });

  it('runs as the ServiceAccount the RBAC binds', () => {
    const sa = deployObject<V1ServiceAccount>('ServiceAccount', spec.serviceAccountName ?? '', manifests);
    expect(sa.metadata?.namespace).toBe(ds.metadata?.namespace);
  });

  it("both containers run the same image, tagged with the package's version", () => {
    const version = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;
    expect(router.image).toBe(`weft:${version}`);
    expect(init.image).toBe(router.image);
  });
});

describe('the init container', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('installs into the host paths /opt/cni/bin, /etc/cni/net.d and /opt/weft, mounted at the same paths, from the ConfigMap', () => {
    const args = initArgs;
    const flag = (f: string): string => args[args.indexOf(f) + 1]!;
    expect(args[0]).toBe('cni-install');
    for (const [f, host] of [['--bin-dir', '/opt/cni/bin'], ['--conf-dir', '/etc/cni/net.d'], ['--runtime-dir', '/opt/weft']] as const) {
      expect(flag(f), f).toBe(host);
      expect(mountAt(init, host)!.volume.hostPath, f).toEqual({ path: host, type: 'DirectoryOrCreate' });
    }
    const conf = mountAt(init, dirname(flag('--conflist')))!;
    expect(conf.volume.configMap).toEqual({ name: 'weft-config', items: [{ key: CONFLIST_KEY, path: flag('--conflist').slice(dirname(flag('--conflist')).length + 1) }] });
  });

  const cli = join(process.cwd(), 'dist', 'src', 'cli', 'main.js');
  it(
    "its command, run by the built CLI, installs the plugin, a Node fallback that runs without the image, and exactly the ConfigMap's conflist",
    () => {
      expect(existsSync(cli) && existsSync(join('build', 'weft-cni')), 'the built CLI and plugin (npm run build)').toBe(true);
      dir = mkdtempSync(join(tmpdir(), 'weft-deploy-init-'));
      const root = dir;
      // The node's paths (the same in the container), moved under a temp dir; the ConfigMap's file there.
      const args = initArgs.map((a) => (a.startsWith('/') ? join(root, a) : a));
      const flag = (f: string): string => args[args.indexOf(f) + 1]!;
      mkdirSync(dirname(flag('--conflist')), { recursive: true });
      const data = deployObject<V1ConfigMap>('ConfigMap', 'weft-config', manifests).data ?? {};
      writeFileSync(flag('--conflist'), data[CONFLIST_KEY]!);
      const out = execFileSync(process.execPath, [cli, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      expect(out).toMatch(/^installed /);
      const binDir = flag('--bin-dir');
      expect(readdirSync(binDir).sort()).toEqual(['weft', 'weft-node']);
      expect(readFileSync(join(binDir, 'weft')).equals(readFileSync(join('build', 'weft-cni')))).toBe(true);
      // No portmap in this bin dir to narrow the versions by: the conflist as the ConfigMap has it.
      expect(JSON.parse(readFileSync(join(flag('--conf-dir'), CONFLIST_KEY), 'utf8'))).toEqual(deployConflist(manifests));
      // weft-node names the copy under --runtime-dir, nothing of this checkout.
      const copies = readdirSync(flag('--runtime-dir'));
      expect(copies).toEqual([expect.stringMatching(/^[0-9a-f]{16}$/)]);
      const wrapper = readFileSync(join(binDir, 'weft-node'), 'utf8');
      expect(wrapper).toContain(join(flag('--runtime-dir'), copies[0]!, 'bin', 'node'));
      expect(wrapper).not.toContain(process.cwd());
      // With no router, the installed binary falls back to that copy, called as libcni calls (env -i).
      const list = deployConflist(manifests) as { cniVersion: string; name: string; plugins: Record<string, unknown>[] };
      const conf = JSON.stringify({ ...list.plugins[0], cniVersion: list.cniVersion, name: list.name, socket: join(root, 'run', 'weft.sock'), journalDir: join(root, 'journal') });
      const call = (command: string, input = conf) => spawnSync(join(binDir, 'weft'), [], { env: { CNI_COMMAND: command, CNI_PATH: binDir }, input, encoding: 'utf8' });
      const version = call('VERSION');
      expect(version.status, version.stderr).toBe(0);
      expect(JSON.parse(version.stdout)).toEqual({ cniVersion: '1.0.0', supportedVersions: ['1.0.0', '1.1.0'] });
      // STATUS is CNI 1.1.0's (what the conflist's cniVersions offers a newer runtime).
      const status = call('STATUS', JSON.stringify({ ...JSON.parse(conf), cniVersion: '1.1.0' }));
      expect(status.status).toBe(1);
      expect(JSON.parse(status.stdout), status.stdout).toMatchObject({ code: 50, msg: expect.stringMatching(/router/) });
      // Installed again (a restarted pod): the copy is reused, not made twice.
      expect(execFileSync(process.execPath, [cli, ...args], { encoding: 'utf8' })).toContain('(already there)');
      expect(readdirSync(flag('--runtime-dir'))).toEqual(copies);
    },
  );
});
