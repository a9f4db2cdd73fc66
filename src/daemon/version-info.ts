/**
 * What `weft version`, status, the start log line and `weft_build_info` show: the release
 * version, Node's, and the protocol versions peers check. Peers compare only the protocol
 * versions (a different one is refused: the mesh preamble, the sleeve header byte); the release
 * version never leaves the router except for people and tools.
 */
import { weftVersion } from '../core/version.js';
import { MESH_PROTOCOL_MAX, MESH_PROTOCOL_MIN, MESH_VERSION } from '../mesh/mesh-protocol.js';
import { WIRE_VERSION } from '../router/sleeve/wire.js';
import type { VersionInfo } from '../api/types.js';

export function versionInfo(): VersionInfo {
  return { version: weftVersion(), node: process.versions.node, meshProtocol: MESH_VERSION, meshProtocolMin: MESH_PROTOCOL_MIN, meshProtocolMax: MESH_PROTOCOL_MAX, sleeveProtocol: WIRE_VERSION };
}

/** One line for `weft version` and `weft --version`. */
export function formatVersion(v: VersionInfo): string {
  return `weft ${v.version} (node ${v.node}, mesh protocol ${v.meshProtocolMin}..${v.meshProtocolMax}, sleeve protocol ${v.sleeveProtocol})`;
}
