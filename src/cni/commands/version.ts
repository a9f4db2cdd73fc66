/**
 * VERSION: the versions this plugin speaks. Its input is only `{"cniVersion": ...}` and may be
 * absent; the answer echoes the version asked (or the latest) and lists every supported one.
 */
import { decodeJson } from '../netconf.js';
import { LATEST_VERSION, SUPPORTED_VERSIONS } from '../versions.js';

export interface VersionInfo {
  cniVersion: string;
  supportedVersions: string[];
}

export function cmdVersion(stdin: string): VersionInfo {
  let asked: unknown;
  if (stdin.trim() !== '') asked = (decodeJson(stdin, 'VERSION input') as { cniVersion?: unknown } | null)?.cniVersion;
  return { cniVersion: typeof asked === 'string' && asked !== '' ? asked : LATEST_VERSION, supportedVersions: [...SUPPORTED_VERSIONS] };
}
