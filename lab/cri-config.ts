/**
 * The config.toml (version 2) of a lab containerd 1.6: everything under its own directory, CRI
 * on, cgroupfs (there is no systemd), no OOM score raise (the lab lacks CAP_SYS_RESOURCE), pod
 * netns mounted under the state dir, one CNI conflist from the caller's conf dir.
 */

export interface ContainerdConfigInit {
  root: string;
  state: string;
  socket: string;
  /** The "opt" plugin's directory (default /opt/containerd otherwise). */
  optDir: string;
  cniBinDir: string;
  cniConfDir: string;
  sandboxImage: string;
  logLevel: string;
}

/** Plugins a lab never needs; skipping them keeps the log quiet and the start fast. */
const DISABLED_PLUGINS = [
  'io.containerd.snapshotter.v1.aufs',
  'io.containerd.snapshotter.v1.btrfs',
  'io.containerd.snapshotter.v1.devmapper',
  'io.containerd.snapshotter.v1.zfs',
  'io.containerd.tracing.processor.v1.otlp',
  'io.containerd.internal.v1.tracing',
];

export function containerdConfig(c: ContainerdConfigInit): string {
  const s = (v: string): string => JSON.stringify(v); // a TOML basic string for paths and names
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  return `# Written by weft's lab (lab/cri-config.ts) for one lab node.
version = 2
root = ${s(c.root)}
state = ${s(c.state)}
disabled_plugins = [${DISABLED_PLUGINS.map(s).join(', ')}]

[grpc]
  address = ${s(c.socket)}

[ttrpc]
  address = ${s(`${c.socket}.ttrpc`)}

[debug]
  level = ${s(c.logLevel)}

[plugins."io.containerd.internal.v1.opt"]
  path = ${s(c.optDir)}

[${cri}]
  sandbox_image = ${s(c.sandboxImage)}
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  enable_selinux = false
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[${cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[${cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[${cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false

[${cri}.cni]
  bin_dir = ${s(c.cniBinDir)}
  conf_dir = ${s(c.cniConfDir)}
  max_conf_num = 1
`;
}
