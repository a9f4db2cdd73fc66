/**
 * The skeleton: reads the CNI_* environment and the config on stdin (both injected, so tests run
 * it in-process), negotiates the version, dispatches to one function per command and turns every
 * failure into the spec's error JSON on stdout with exit code 1. Success: the result (ADD), the
 * version info (VERSION) or nothing (DEL, CHECK, STATUS, GC), exit code 0.
 */
import { CniCode, CniError, type CniErrorJson } from './errors.js';
import type { DaemonApi } from './client.js';
import { cmdVersion } from './commands/version.js';
import { decodeJson, parseNetConf, SPEC_NAME, type NetConf } from './netconf.js';
import type { CniResult } from './result.js';
import { routerDeadline, type Command } from './limits.js';
import type { LinkOps } from './veth.js';
import { isSupportedVersion, LATEST_VERSION, versionAtLeast } from './versions.js';

export interface Writable {
  write(text: string): unknown;
}

export interface PluginIO {
  env: Readonly<Record<string, string | undefined>>;
  stdin: string;
  /** Set when stdin could not be read (closed, a directory): every command but VERSION fails with code 5. */
  stdinError?: Error;
  stdout: Writable;
  stderr: Writable;
  /** ms since the epoch by which the command must be done (default: limits.ts, from now). */
  deadline?: number;
}

export interface PluginDeps {
  links: LinkOps;
  /** The router at `socket`; no request to it waits past `deadline` (ms since the epoch). */
  daemon(socket: string, deadline?: number): DaemonApi;
  /** The release journal (see src/core/release-journal.ts): DEL records, ADD drops a stale entry of its attachment. */
  journal(dir: string): { record(containerId: string, ifName: string | undefined): void; done(entry: { containerId: string; ifName?: string; at: number }): void };
}

export type { Command };
const COMMANDS: readonly Command[] = ['ADD', 'DEL', 'CHECK', 'STATUS', 'GC', 'VERSION'];

export interface CommandContext {
  command: Command;
  /** ADD, DEL, CHECK. */
  containerId: string;
  /** ADD, CHECK; DEL when the runtime still has one ('' otherwise). */
  netns: string;
  ifName: string;
  /** CNI_ARGS, parsed ('K=V;K=V'). */
  args: ReadonlyMap<string, string>;
  /** CNI_PATH, split. */
  path: string[];
  conf: NetConf;
  /** `deps.daemon` here is bound to `deadline`. */
  deps: PluginDeps;
  /** ms since the epoch by which the command must be done (limits.ts). */
  deadline: number;
  /** One line to stderr (runtimes keep it in their logs). */
  log(line: string): void;
}

export interface Handlers {
  add(ctx: CommandContext): Promise<CniResult>;
  del(ctx: CommandContext): Promise<void>;
  check(ctx: CommandContext): Promise<void>;
  status(ctx: CommandContext): Promise<void>;
  gc(ctx: CommandContext): Promise<void>;
}

/** Which variables each command needs (the spec's "required" lists). */
const REQUIRED: Record<Command, string[]> = {
  ADD: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'],
  DEL: ['CNI_CONTAINERID', 'CNI_IFNAME'],
  CHECK: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'],
  STATUS: [],
  GC: [],
  VERSION: [],
};

/** Why `name` cannot be a Linux interface name, or undefined when it can. */
export function ifNameProblem(name: string): string | undefined {
  if (name === '') return 'is empty';
  if (Buffer.byteLength(name) > 15) return `"${name}" is longer than 15 bytes`;
  if (name === '.' || name === '..') return `"${name}" is not a valid name`;
  if (/[/:\s]/.test(name)) return `"${name}" contains '/', ':' or whitespace`;
  return undefined;
}

export function parseCniArgs(text: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (text === undefined || text === '') return out;
  for (const pair of text.split(';')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new CniError(CniCode.InvalidEnvironment, `CNI_ARGS: "${pair}" is not KEY=VALUE`);
    out.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  return out;
}

interface ParsedEnv {
  command: Command;
  containerId: string;
  netns: string;
  ifName: string;
  args: Map<string, string>;
  path: string[];
}

/** CNI_ARGS keys asking for a specific address or MAC, which ADD refuses. */
const REQUESTED_ARGS = ['IP', 'MAC'] as const;

export function parseEnv(env: PluginIO['env']): ParsedEnv {
  const raw = env.CNI_COMMAND;
  if (raw === undefined || raw === '') throw new CniError(CniCode.InvalidEnvironment, 'CNI_COMMAND is not set (ADD, DEL, CHECK, STATUS, GC or VERSION)');
  if (!(COMMANDS as readonly string[]).includes(raw)) {
    throw new CniError(CniCode.InvalidEnvironment, `CNI_COMMAND "${raw}" is not one of ${COMMANDS.join(', ')}`);
  }
  const command = raw as Command;
  const missing = REQUIRED[command].filter((k) => (env[k] ?? '') === '');
  if (missing.length > 0) throw new CniError(CniCode.InvalidEnvironment, `${command} needs ${missing.join(', ')} (not set or empty)`);
  const containerId = env.CNI_CONTAINERID ?? '';
  const ifName = env.CNI_IFNAME ?? '';
  const netns = env.CNI_NETNS ?? '';
  const attachment = command === 'ADD' || command === 'DEL' || command === 'CHECK';
  if (attachment) {
    if (!SPEC_NAME.test(containerId)) {
      throw new CniError(CniCode.InvalidEnvironment, `CNI_CONTAINERID "${containerId}" must start with a letter or digit and hold only letters, digits, '_', '.' and '-'`);
    }
    const why = ifNameProblem(ifName);
    if (why !== undefined) throw new CniError(CniCode.InvalidEnvironment, `CNI_IFNAME ${why}`);
    if (netns !== '' && !netns.startsWith('/')) throw new CniError(CniCode.InvalidEnvironment, `CNI_NETNS "${netns}" must be an absolute path to a network namespace`);
  }
  const args = parseCniArgs(env.CNI_ARGS);
  if (command === 'ADD') {
    // host-local and the bridge plugin take these (podman run --ip / --mac-address); weft cannot
    // give a requested address or MAC, and handing out another one silently would be wrong.
    for (const k of REQUESTED_ARGS) {
      const v = args.get(k);
      if (v !== undefined) throw new CniError(CniCode.InvalidEnvironment, `CNI_ARGS ${k}=${v}: weft ${k === 'IP' ? 'assigns pod addresses from its cluster IPAM' : 'gives each pod interface a random MAC'} and cannot honour a requested one; remove it`);
    }
  }
  return {
    command,
    containerId,
    netns,
    ifName,
    args,
    path: (env.CNI_PATH ?? '').split(':').filter((p) => p !== ''),
  };
}

/** Runs one plugin invocation; returns the exit code. Never throws. */
export async function runPlugin(io: PluginIO, handlers: Handlers, deps: PluginDeps): Promise<number> {
  let version: string = LATEST_VERSION;
  try {
    const env = parseEnv(io.env);
    if (env.command === 'VERSION') {
      io.stdout.write(`${JSON.stringify(cmdVersion(io.stdinError === undefined ? io.stdin : ''))}\n`);
      return 0;
    }
    if (io.stdinError !== undefined) throw new CniError(CniCode.IoFailure, `cannot read the network configuration from stdin: ${io.stdinError.message}`, { cause: io.stdinError });
    const raw = decodeJson(io.stdin, 'network configuration');
    const v = (raw as { cniVersion?: unknown } | null)?.cniVersion;
    if (isSupportedVersion(v)) version = v;
    const conf = parseNetConf(raw);
    if ((env.command === 'STATUS' || env.command === 'GC') && !versionAtLeast(conf.cniVersion, '1.1.0')) {
      throw new CniError(CniCode.IncompatibleVersion, `${env.command} needs cniVersion 1.1.0 or later; the config has ${conf.cniVersion}`);
    }
    const deadline = io.deadline ?? routerDeadline(env.command, Date.now());
    const bound: PluginDeps = { ...deps, daemon: (socket) => deps.daemon(socket, deadline) };
    const ctx: CommandContext = { ...env, conf, deps: bound, deadline, log: (line) => io.stderr.write(`weft: ${line}\n`) };
    switch (env.command) {
      case 'ADD':
        io.stdout.write(`${JSON.stringify(await handlers.add(ctx))}\n`);
        break;
      case 'DEL':
        await handlers.del(ctx);
        break;
      case 'CHECK':
        await handlers.check(ctx);
        break;
      case 'STATUS':
        await handlers.status(ctx);
        break;
      case 'GC':
        await handlers.gc(ctx);
        break;
    }
    return 0;
  } catch (err) {
    const e: CniErrorJson =
      err instanceof CniError
        ? { cniVersion: version, code: err.cniCode, msg: err.message, ...(err.details === '' ? {} : { details: err.details }) }
        : { cniVersion: version, code: CniCode.Internal, msg: `internal error: ${err instanceof Error ? err.message : String(err)}` };
    io.stdout.write(`${JSON.stringify(e)}\n`);
    return 1;
  }
}
