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
