import { ExpiringCache } from './expiring-cache';

describe('ExpiringCache', () => {
  let clock: number;
  const now = () => clock;
  beforeEach(() => (clock = 1000));

  it('serves a value for the ttl, then loads again', async () => {
    const cache = new ExpiringCache<number>(5000, 100, now);
    const load = jest.fn().mockResolvedValueOnce(1).mockResolvedValueOnce(2);
    expect(await cache.get('a', load)).toBe(1);
    clock += 4999;
    expect(await cache.get('a', load)).toBe(1);
    clock += 1;
    expect(await cache.get('a', load)).toBe(2);
    expect(load).toHaveBeenCalledTimes(2);
  });

  it('shares one load between concurrent misses', async () => {
    const cache = new ExpiringCache<string>(5000, 100, now);
    const load = jest.fn(() => new Promise<string>((resolve) => setTimeout(() => resolve('x'), 5)));
    const values = await Promise.all([cache.get('k', load), cache.get('k', load), cache.get('k', load)]);
    expect(values).toEqual(['x', 'x', 'x']);
    expect(load).toHaveBeenCalledTimes(1);
  });

  it('does not keep failures', async () => {
    const cache = new ExpiringCache<string>(5000, 100, now);
    await expect(cache.get('k', () => Promise.reject(new Error('down')))).rejects.toThrow('down');
    expect(cache.size).toBe(0);
    expect(await cache.get('k', async () => 'up')).toBe('up');
  });

  it('loads every time when the ttl is 0', async () => {
    const cache = new ExpiringCache<number>(0, 100, now);
    const load = jest.fn().mockResolvedValue(1);
    await cache.get('a', load);
    await cache.get('a', load);
    expect(load).toHaveBeenCalledTimes(2);
    expect(cache.size).toBe(0);
  });

  it('refresh replaces the cached value', async () => {
    const cache = new ExpiringCache<number>(5000, 100, now);
    await cache.get('a', async () => 1);
    expect(await cache.refresh('a', async () => 2)).toBe(2);
    expect(await cache.get('a', async () => 3)).toBe(2);
  });

  it('evicts the oldest entries beyond its size', async () => {
    const cache = new ExpiringCache<number>(5000, 2, now);
    await cache.get('a', async () => 1);
    await cache.get('b', async () => 2);
    await cache.get('c', async () => 3);
    expect(cache.size).toBe(2);
    expect(await cache.get('a', async () => 10)).toBe(10);
    expect(await cache.get('c', async () => 30)).toBe(3);
  });
});
