/**
 * Strings in UTF-16 code-unit order: the same on every machine and locale, like Kubernetes' own
 * ordering of names. `localeCompare` is not used for anything a router sorts: its first call
 * loads ICU's collator (about 0.6 MB of the Node binary's data read in, and its tables on the
 * heap, for the life of the process) and its order depends on the locale.
 */
export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
