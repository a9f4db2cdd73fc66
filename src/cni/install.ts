/**
 * Installs the plugin on a node: `<binDir>/weft`, the native plugin binary (src/cni/shim/weft-cni.c,
 * built by `npm run build:native`), which hands each call to the router's socket and starts in a
 * millisecond; `<binDir>/weft-node`, a small shell wrapper that execs this Node with the built
 * entry by absolute paths (runtimes promise no PATH, so `#!/usr/bin/env node` would not do),
 * which the binary falls back to when the router is unreachable (and which is installed as
 * `weft` itself when the binary was not built); and the conflist `<confDir>/00-weft.conflist` (weft first, portmap chained behind it,
 * then bandwidth when asked),
 * which sorts before the usual names so runtimes that take the first file take ours. Both files
 * are written atomically: temp file, fsync, rename, then fsync of the directory.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { writeFileAtomicSync } from '../core/atomic-file.js';
import { isAbsolute, join } from 'node:path';
import { ConfigError } from '../core/errors.js';
import { packageRoot } from '../core/paths.js';
import { DEFAULT_JOURNAL_DIR, DEFAULT_SOCKET, parseNetConf, SPEC_NAME } from './netconf.js';
import type { CniDns } from './result.js';
import { installRuntime, pruneRuntimes } from './install-runtime.js';
import { SUPPORTED_VERSIONS } from './versions.js';

export const CONFLIST_NAME = '00-weft.conflist';
export const PLUGIN_NAME = 'weft';
export const NODE_PLUGIN_NAME = 'weft-node';

export interface InstallOptions {
  /** Default /opt/cni/bin. */
  binDir?: string;
  /** Default /etc/cni/net.d. */
  confDir?: string;
  /** Network name; default 'weft'. */
  name?: string;
  /** The daemon's API socket; default /run/weft/weft.sock. */
  socket?: string;
  journalDir?: string;
  /** Overrides the router's MTU for pods. */
  mtu?: number;
  dns?: CniDns;
  /** Chain portmap (capabilities portMappings) behind weft; default true. */
  portmap?: boolean;
  /**
   * Chain the reference bandwidth plugin (capabilities bandwidth) last, so the runtime's
   * per-pod limits (kubelet/containerd: the pod annotations `kubernetes.io/ingress-bandwidth` and
   * `kubernetes.io/egress-bandwidth`) are applied as tbf qdiscs on the pod's host veth (ingress)
   * and an ifb device (egress); default false. `<binDir>/bandwidth` must be installed.
   */
  bandwidth?: boolean;
  /** The conflist's cniVersion; default 1.0.0 (what containerd 1.6 speaks). */
  cniVersion?: string;
  /**
   * Also offered as `cniVersions` so newer runtimes pick the highest they share (1.1.0 brings
   * STATUS and GC). Default: the versions weft supports, narrowed to those `<binDir>/portmap` and
   * `<binDir>/bandwidth` report (VERSION) when chained and installed: every plugin of the list
   * must speak the version the runtime picks.
   */
  cniVersions?: string[];
  /** Node to run the plugin with; default this process's (process.execPath). */
  nodePath?: string;
  /** The built entry; default <package root>/dist/src/cni/main.js. */
  pluginMain?: string;
  /** The native plugin binary; default <package root>/build/weft-cni; false: Node only. */
  shim?: string | false;
  /**
   * A conflist to install as it is (deploy's ConfigMap) instead of one made from the options
   * above (name, socket, journalDir, mtu, dns, portmap, bandwidth and cniVersion are then not
   * used): its first plugin must be weft and pass the plugin's own config check; its
   * `cniVersions` are narrowed as a made one's are, to what its chained plugins report.
   */
  conflist?: unknown;
  /**
   * Copy the Node plugin's runtime (this Node, the built code, the addon) into a directory under
   * this one and point `weft-node` there (install-runtime.ts): for an install from a container
   * onto its host, where the container's own paths do not exist. Not with nodePath or pluginMain.
   */
  runtimeDir?: string;
}

export interface Installed {
  /** What runtimes execute: `<binDir>/weft`. */
  plugin: string;
  /** Whether `plugin` is the native binary (else it is the Node wrapper too). */
  native: boolean;
  /** The Node wrapper, `<binDir>/weft-node`. */
  wrapper: string;
  conflist: string;
  /** Config files in confDir that sort before ours (a runtime taking the first would not see weft). */
  shadowedBy: string[];
  /** Chained plugins (portmap, bandwidth) absent from binDir: every ADD fails until they are installed. */
  chainedMissing: string[];
  /** With `runtimeDir`: the copy `weft-node` runs, and whether this install made it (else it was there). */
  runtime?: { dir: string; copied: boolean; pruned: string[] };
}

/** Single-quotes a word for /bin/sh. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export function wrapperScript(nodePath: string, pluginMain: string): string {
  return `#!/bin/sh\n# weft CNI plugin (written by weft install; do not edit)\nexec ${shellQuote(nodePath)} ${shellQuote(pluginMain)} "$@"\n`;
}

export function conflist(o: InstallOptions): Record<string, unknown> {
  const cniVersion = o.cniVersion ?? '1.0.0';
  const weft: Record<string, unknown> = { type: PLUGIN_NAME, socket: o.socket ?? DEFAULT_SOCKET, journalDir: o.journalDir ?? DEFAULT_JOURNAL_DIR };
  if (o.mtu !== undefined) weft.mtu = o.mtu;
  if (o.dns !== undefined && Object.keys(o.dns).length > 0) weft.dns = o.dns;
  const plugins: Record<string, unknown>[] = [weft];
  if (o.portmap ?? true) plugins.push({ type: 'portmap', capabilities: { portMappings: true }, snat: true });
  if (o.bandwidth ?? false) plugins.push({ type: 'bandwidth', capabilities: { bandwidth: true } });
  const cniVersions = o.cniVersions ?? [...SUPPORTED_VERSIONS];
  return { cniVersion, ...(cniVersions.length > 0 ? { cniVersions } : {}), name: o.name ?? 'weft', plugins };
}

/**
 * The problems of a conflist given whole (`InstallOptions.conflist`), each naming its field: not
 * an object, no `plugins`, a first plugin that is not weft or that the plugin itself would refuse
 * (its keys, its paths), a CNI version weft does not speak, a chained plugin without a type.
 */
export function conflistProblems(list: unknown): string[] {
  const p: string[] = [];
  if (typeof list !== 'object' || list === null || Array.isArray(list)) return ['the conflist must be a JSON object'];
  const l = list as Record<string, unknown>;
  const nameOk = typeof l.name === 'string' && SPEC_NAME.test(l.name);
  if (!nameOk) p.push(`the conflist's name ${JSON.stringify(l.name)} must start with a letter or digit and hold only letters, digits, '_', '.' and '-'`);
  const versions = [l.cniVersion, ...(Array.isArray(l.cniVersions) ? l.cniVersions : l.cniVersions === undefined ? [] : [l.cniVersions])];
  for (const v of versions) if (typeof v !== 'string' || !(SUPPORTED_VERSIONS as readonly string[]).includes(v)) p.push(`the conflist's CNI version ${JSON.stringify(v)} is not one weft supports (${SUPPORTED_VERSIONS.join(', ')})`);
  if (!Array.isArray(l.plugins) || l.plugins.length === 0) return [...p, "the conflist's plugins must be a non-empty array"];
  const [first, ...chained] = l.plugins as unknown[];
  if (typeof first !== 'object' || first === null || (first as Record<string, unknown>).type !== PLUGIN_NAME) {
    p.push(`the conflist's first plugin must be weft (type "${PLUGIN_NAME}")`);
  } else {
    // As a runtime hands it to the plugin: the list's version and name added to the entry (a
    // valid stand-in for either when it was refused above, so it is not reported twice).
    const versionOk = typeof l.cniVersion === 'string' && (SUPPORTED_VERSIONS as readonly string[]).includes(l.cniVersion);
    try {
      parseNetConf({ ...(first as Record<string, unknown>), cniVersion: versionOk ? l.cniVersion : SUPPORTED_VERSIONS[0], name: nameOk ? l.name : PLUGIN_NAME });
    } catch (err) {
      p.push(`the conflist's weft plugin: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  chained.forEach((c, i) => {
    if (typeof c !== 'object' || c === null || typeof (c as Record<string, unknown>).type !== 'string') p.push(`the conflist's plugins[${i + 1}] must be an object with a type`);
  });
  return p;
}

function problemsOf(o: InstallOptions, main: string, node: string): string[] {
  const p: string[] = [];
  if (o.conflist !== undefined) p.push(...conflistProblems(o.conflist));
  if (o.runtimeDir !== undefined && (o.nodePath !== undefined || o.pluginMain !== undefined)) p.push('runtimeDir cannot be given with nodePath or pluginMain (the copy has its own)');
  for (const [k, v] of [['binDir', o.binDir], ['confDir', o.confDir], ['socket', o.socket], ['journalDir', o.journalDir], ['nodePath', node], ['pluginMain', main], ['runtimeDir', o.runtimeDir]] as const) {
    if (v !== undefined && !isAbsolute(v)) p.push(`${k} must be an absolute path, not "${v}"`);
  }
  if (o.name !== undefined && !SPEC_NAME.test(o.name)) p.push(`name "${o.name}" must start with a letter or digit and hold only letters, digits, '_', '.' and '-'`);
  if (o.mtu !== undefined && (!Number.isInteger(o.mtu) || o.mtu < 576 || o.mtu > 65535)) p.push(`mtu must be an integer in 576-65535, not ${o.mtu}`);
  const versions = [o.cniVersion ?? '1.0.0', ...(o.cniVersions ?? [])];
  for (const v of versions) if (!(SUPPORTED_VERSIONS as readonly string[]).includes(v)) p.push(`CNI version ${v} is not one weft supports (${SUPPORTED_VERSIONS.join(', ')})`);
  if (isAbsolute(main) && !existsSync(main)) p.push(`the plugin entry ${main} does not exist (run npm run build:ts)`);
  return p;
}

/** What a CNI plugin binary answers to VERSION; undefined when it is absent or answers nothing usable. */
export function pluginVersions(binary: string): string[] | undefined {
  if (!existsSync(binary)) return undefined;
  let out: string;
  try {
    out = execFileSync(binary, [], { env: { CNI_COMMAND: 'VERSION' }, input: '{"cniVersion":"1.0.0"}', timeout: 5000, encoding: 'utf8', stdio: ['pipe', 'pipe', 'ignore'] });
  } catch (err) {
    // A plugin that answers without reading stdin makes writing it fail (EPIPE): its answer counts.
    const e = err as { status?: number | null; stdout?: unknown };
    if (e.status !== 0 || typeof e.stdout !== 'string') return undefined;
    out = e.stdout;
  }
  try {
    const v = (JSON.parse(out) as { supportedVersions?: unknown }).supportedVersions;
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : undefined;
  } catch {
    return undefined;
  }
}

/** Installs the wrapper, then the conflist (so a runtime never sees a config whose plugin is missing). */
export function installCni(o: InstallOptions = {}): Installed {
  const nodePath = o.nodePath ?? process.execPath;
  const pluginMain = o.pluginMain ?? join(packageRoot(import.meta.url), 'dist', 'src', 'cni', 'main.js');
  const problems = problemsOf(o, pluginMain, nodePath);
  if (problems.length > 0) throw new ConfigError(problems, 'CNI install options');
  const binDir = o.binDir ?? '/opt/cni/bin';
  const confDir = o.confDir ?? '/etc/cni/net.d';
  mkdirSync(binDir, { recursive: true, mode: 0o755 });
  mkdirSync(confDir, { recursive: true, mode: 0o755 });
  const wrapper = join(binDir, NODE_PLUGIN_NAME);
  const runtime = o.runtimeDir === undefined ? undefined : installRuntime(o.runtimeDir, packageRoot(import.meta.url), nodePath);
  const script = runtime === undefined ? wrapperScript(nodePath, pluginMain) : wrapperScript(runtime.nodePath, runtime.pluginMain);
  writeFileAtomicSync(wrapper, script, 0o755);
  const shim = o.shim ?? join(packageRoot(import.meta.url), 'build', 'weft-cni');
  const native = shim !== false && existsSync(shim);
  const plugin = join(binDir, PLUGIN_NAME);
  writeFileAtomicSync(plugin, native ? readFileSync(shim) : script, 0o755);
  const path = join(confDir, CONFLIST_NAME);
  const given = o.conflist as { plugins: { type: string }[]; cniVersions?: string[] } | undefined;
  const chained = given !== undefined ? given.plugins.slice(1).map((c) => c.type) : [...((o.portmap ?? true) ? ['portmap'] : []), ...((o.bandwidth ?? false) ? ['bandwidth'] : [])];
  let cniVersions = given !== undefined ? given.cniVersions : o.cniVersions;
  if (cniVersions === undefined || given !== undefined) {
    for (const name of chained) {
      const theirs = pluginVersions(join(binDir, name));
      if (theirs !== undefined) cniVersions = (cniVersions ?? [...SUPPORTED_VERSIONS]).filter((v: string) => theirs.includes(v));
    }
  }
  const chosen = given !== undefined ? { ...given, ...(cniVersions === undefined ? {} : { cniVersions }) } : conflist({ ...o, ...(cniVersions === undefined ? {} : { cniVersions }) });
  writeFileAtomicSync(path, `${JSON.stringify(chosen, null, 2)}\n`, 0o644);
  const shadowedBy = readdirSync(confDir)
    .filter((n) => /\.(conf|conflist|json)$/.test(n) && n !== CONFLIST_NAME && !n.startsWith('.'))
    .filter((n) => n < CONFLIST_NAME)
    .sort();
  const chainedMissing = chained.filter((n) => !existsSync(join(binDir, n)));
  // Older copies go once the wrapper names the new one.
  const pruned = runtime === undefined ? [] : pruneRuntimes(o.runtimeDir!, runtime.dir);
  return { plugin, native, wrapper, conflist: path, shadowedBy, chainedMissing, ...(runtime === undefined ? {} : { runtime: { dir: runtime.dir, copied: runtime.copied, pruned } }) };
}
