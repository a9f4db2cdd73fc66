/**
 * `node dist/src/cni/install-main.js [--bin-dir D] [--conf-dir D] [--name N] [--socket S]
 * [--journal-dir D] [--mtu M] [--dns-nameserver IP]... [--dns-search S]... [--dns-domain D]
 * [--no-portmap] [--bandwidth]`: installs the plugin and its conflist (see install.ts).
 */
import { parseArgs } from 'node:util';
import { describeError } from '../core/errors.js';
import { installCni, type InstallOptions } from './install.js';

try {
  const { values } = parseArgs({
    options: {
      'bin-dir': { type: 'string' },
      'conf-dir': { type: 'string' },
      name: { type: 'string' },
      socket: { type: 'string' },
      'journal-dir': { type: 'string' },
      mtu: { type: 'string' },
      'dns-nameserver': { type: 'string', multiple: true },
      'dns-search': { type: 'string', multiple: true },
      'dns-domain': { type: 'string' },
      'no-portmap': { type: 'boolean' },
      bandwidth: { type: 'boolean' },
    },
  });
  const o: InstallOptions = { portmap: values['no-portmap'] !== true, bandwidth: values.bandwidth === true };
  if (values['bin-dir'] !== undefined) o.binDir = values['bin-dir'];
  if (values['conf-dir'] !== undefined) o.confDir = values['conf-dir'];
  if (values.name !== undefined) o.name = values.name;
  if (values.socket !== undefined) o.socket = values.socket;
  if (values['journal-dir'] !== undefined) o.journalDir = values['journal-dir'];
  if (values.mtu !== undefined) o.mtu = Number(values.mtu);
  const dns = {
    ...(values['dns-nameserver'] === undefined ? {} : { nameservers: values['dns-nameserver'] }),
    ...(values['dns-search'] === undefined ? {} : { search: values['dns-search'] }),
    ...(values['dns-domain'] === undefined ? {} : { domain: values['dns-domain'] }),
  };
  if (Object.keys(dns).length > 0) o.dns = dns;
  const r = installCni(o);
  process.stdout.write(`installed ${r.wrapper} and ${r.conflist}\n`);
  if (r.shadowedBy.length > 0) process.stderr.write(`warning: ${r.shadowedBy.join(', ')} sort(s) before ${r.conflist}; runtimes use the first file\n`);
  if (r.chainedMissing.length > 0) process.stderr.write(`warning: ${r.chainedMissing.join(', ')} not in ${r.plugin.slice(0, r.plugin.lastIndexOf('/'))}; every ADD fails until installed\n`);
} catch (err) {
  process.stderr.write(`weft CNI install failed: ${describeError(err)}\n`);
  process.exitCode = 1;
}
