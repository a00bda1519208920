/**
 * A small time-bounded cache of async lookups. Concurrent misses for one key share a single load;
 * failed loads are not kept. The oldest entries go first once `maxEntries` is reached, so a flood of
 * distinct keys (random emails) cannot grow memory without bound.
 */
export class ExpiringCache<V> {
  private readonly entries = new Map<string, { value: Promise<V>; expiresAt: number }>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  get enabled(): boolean {
    return this.ttlMs > 0;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The cached value for `key`, or the result of `load` (then cached for the ttl). */
  get(key: string, load: () => Promise<V>): Promise<V> {
    if (!this.enabled) return load();
    const entry = this.entries.get(key);
    if (entry && entry.expiresAt > this.now()) return entry.value;
    return this.set(key, load());
  }

  /** Replaces the entry with a fresh load (e.g. on a login, so a new password works at once). */
  refresh(key: string, load: () => Promise<V>): Promise<V> {
    return this.enabled ? this.set(key, load()) : load();
  }

  clear(): void {
    this.entries.clear();
  }

  private set(key: string, value: Promise<V>): Promise<V> {
    this.entries.delete(key);
    const entry = { value, expiresAt: this.now() + this.ttlMs };
    this.entries.set(key, entry);
    while (this.entries.size > this.maxEntries) {
      this.entries.delete(this.entries.keys().next().value as string);
    }
    value.catch(() => {
      if (this.entries.get(key) === entry) this.entries.delete(key);
    });
    return value;
  }
}
