/**
 * What `weft version`, status, the start log line and `weft_build_info` show: the release
 * version, Node's, and the protocol versions peers check. Peers compare only the protocol
 * versions (a different one is refused: the mesh preamble, the sleeve header byte); the release
 * version never leaves the router except for people and tools.
 */
import { weftCommit, weftVersion } from '../core/version.js';
import { MESH_PROTOCOL_MAX, MESH_PROTOCOL_MIN, MESH_VERSION } from '../mesh/mesh-protocol.js';
import { WIRE_VERSION } from '../router/sleeve/wire.js';
import type { VersionInfo } from '../api/types.js';

export function versionInfo(): VersionInfo {
  const commit = weftCommit();
  return { version: weftVersion(), ...(commit === undefined ? {} : { commit }), node: process.versions.node, meshProtocol: MESH_VERSION, meshProtocolMin: MESH_PROTOCOL_MIN, meshProtocolMax: MESH_PROTOCOL_MAX, sleeveProtocol: WIRE_VERSION };
}

/** One line for `weft version` and `weft --version`. */
export function formatVersion(v: VersionInfo): string {
  return `weft ${v.version} (${v.commit === undefined ? '' : `commit ${v.commit}, `}node ${v.node}, mesh protocol ${v.meshProtocolMin}..${v.meshProtocolMax}, sleeve protocol ${v.sleeveProtocol})`;
}
