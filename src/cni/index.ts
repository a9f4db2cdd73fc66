/** The CNI plugin's public surface (for the CLI and the daemon's install step). */
export { installCni, conflist, wrapperScript, CONFLIST_NAME, PLUGIN_NAME, type InstallOptions, type Installed } from './install.js';
export { runPlugin, type PluginIO, type PluginDeps, type Handlers } from './skel.js';
export { handlers } from './commands/index.js';
export { CniCode, CniError } from './errors.js';
export { SUPPORTED_VERSIONS, LATEST_VERSION } from './versions.js';
export { DEFAULT_SOCKET, DEFAULT_JOURNAL_DIR } from './netconf.js';
