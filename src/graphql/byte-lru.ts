/**
 * A least-recently-used map bounded by the bytes its entries hold, as measured by the caller's
 * `sizeOf`, and by a number of entries. Every cache of client-chosen data (parsed documents, cached
 * answers) goes through it, so that memory stays bounded whatever a client sends: an entry larger
 * than the whole budget is not kept at all.
 */
export class ByteLru<V> {
  private readonly entries = new Map<string, { value: V; size: number }>();
  private held = 0;

  constructor(
    private readonly maxBytes: number,
    private readonly sizeOf: (key: string, value: V) => number,
    private readonly maxEntries = Number.POSITIVE_INFINITY,
  ) {}

  get(key: string): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    this.entries.delete(key); // re-insert: the Map's order is the recency order
    this.entries.set(key, entry);
    return entry.value;
  }

  set(key: string, value: V): void {
    this.delete(key);
    const size = this.sizeOf(key, value);
    if (size > this.maxBytes || this.maxEntries <= 0) return;
    this.entries.set(key, { value, size });
    this.held += size;
    while (this.held > this.maxBytes || this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.delete(oldest);
    }
  }

  delete(key: string): boolean {
    const entry = this.entries.get(key);
    if (!entry) return false;
    this.entries.delete(key);
    this.held -= entry.size;
    return true;
  }

  /** Bytes held, as measured when the entries were stored. */
  get bytes(): number {
    return this.held;
  }

  get size(): number {
    return this.entries.size;
  }
}

/** UTF-16 code units take two bytes in V8 (one for Latin-1 strings; counting two is the safe bound). */
export const stringBytes = (s: string): number => 2 * s.length;
