// What reading the cache found wrong (a corrupt record read as a miss), gathered from every store
// a verb opened, so that the CLI prints each line once, to stderr, whichever verb ran: reading
// never repairs the cache, so saying what it found is the reader's whole duty. No imports: the
// CLI loads this on every call, the no-op run included.

/** Anything with warnings: an open or closed Store. */
interface Warns {
  readonly warnings: readonly string[];
}

const watched: Warns[] = [];
const taken = new Set<string>();

/** Watches a store this process opened (context.openStore does it for every verb). */
export function watchCacheWarnings(store: Warns): void {
  watched.push(store);
}

/** Warnings not taken before, each message once per process (two stores of one cache find the same). */
export function takeCacheWarnings(): string[] {
  const out: string[] = [];
  for (const store of watched) {
    for (const w of store.warnings)
      if (!taken.has(w)) {
        taken.add(w);
        out.push(w);
      }
  }
  return out;
}
