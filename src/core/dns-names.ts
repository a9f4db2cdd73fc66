/**
 * Kubernetes' DNS-1123 names (apimachinery's IsDNS1123Label and IsDNS1123Subdomain): a label is
 * at most 63 of a-z, 0-9 and '-', alphanumeric at both ends; a subdomain is labels joined by '.',
 * at most 253 characters. Namespaces are labels, pods and most objects subdomains.
 */
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export const DNS_LABEL_MAX = 63;
export const DNS_SUBDOMAIN_MAX = 253;

export function isDnsLabel(s: string): boolean {
  return s.length <= DNS_LABEL_MAX && DNS_LABEL.test(s);
}

export function isDnsSubdomain(s: string): boolean {
  return s.length <= DNS_SUBDOMAIN_MAX && DNS_SUBDOMAIN.test(s);
}

/** A label of a host name (RFC 1123 §2.1): letters of either case, digits and '-', alphanumeric at both ends. */
const HOST_LABEL = /^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?$/;

/**
 * A host name as RFC 1123 §2.1 allows it, case-insensitive: labels of at most 63 characters joined
 * by '.', at most 253 in all (one trailing '.' allowed), and a last label that is not all digits
 * (so a mistyped IPv4 address such as "10.0.0" is not taken for a name).
 */
export function isHostName(s: string): boolean {
  const name = s.endsWith('.') ? s.slice(0, -1) : s;
  if (name.length === 0 || name.length > DNS_SUBDOMAIN_MAX) return false;
  const labels = name.split('.');
  if (/^\d+$/.test(labels[labels.length - 1]!)) return false;
  return labels.every((l) => l.length <= DNS_LABEL_MAX && HOST_LABEL.test(l));
}
