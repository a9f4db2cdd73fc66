/**
 * Kernel parameters of the network namespace the process runs in (`/proc/sys`), named as sysctl(8)
 * names them (`net.ipv4.ip_forward`). Tests substitute an in-memory fake.
 */
export interface Sysctl {
  /** The value, trimmed; undefined when this kernel has no such parameter (e.g. br_netfilter is not loaded). */
  read(name: string): Promise<string | undefined>;
  /** Writes the value; fails when the parameter is missing or read-only (the error names it). */
  write(name: string, value: string): Promise<void>;
}
