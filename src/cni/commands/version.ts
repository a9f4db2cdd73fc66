/**
 * VERSION: the versions this plugin speaks. Its input is only `{"cniVersion": ...}` and may be
 * absent, unreadable or not JSON: the answer is the same then. It echoes the version asked when
 * weft speaks it, the latest otherwise (never an unsupported one), and lists every supported one.
 */
import { isSupportedVersion, LATEST_VERSION, SUPPORTED_VERSIONS } from '../versions.js';

export interface VersionInfo {
  cniVersion: string;
  supportedVersions: string[];
}

export function cmdVersion(stdin: string): VersionInfo {
  let asked: unknown;
  try {
    asked = (JSON.parse(stdin) as { cniVersion?: unknown } | null)?.cniVersion;
  } catch {
    asked = undefined;
  }
  return { cniVersion: isSupportedVersion(asked) ? asked : LATEST_VERSION, supportedVersions: [...SUPPORTED_VERSIONS] };
}
