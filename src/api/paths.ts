/**
 * Where the router and its clients meet by default: the local API socket, and the state directory
 * under which the CNI plugin journals releases while the router cannot take them.
 */
import { join } from 'node:path';

/** The router's local API socket unless `--api-socket` (the CLI's and the plugin's `--socket`) says otherwise. */
export const DEFAULT_API_SOCKET = '/run/weft/weft.sock';

/** The router's state directory unless `--state-dir` says otherwise. */
export const DEFAULT_STATE_DIR = '/var/lib/weft';

/** The release journal of a router with this state directory. */
export function releaseJournalDir(stateDir: string): string {
  return join(stateDir, 'pending-releases');
}
