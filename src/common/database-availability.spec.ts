import { isDatabaseUnavailable, retryWhileUnavailable } from './database-availability';

const notPrimary = () => Object.assign(new Error('not primary'), { name: 'MongoServerError', code: 10107 });

describe('database availability', () => {
  it('counts an unreachable server and a replica set without primary as unavailable, nothing else', () => {
    expect(isDatabaseUnavailable(notPrimary())).toBe(true);
    expect(isDatabaseUnavailable(Object.assign(new Error('x'), { name: 'MongoNetworkError' }))).toBe(true);
    expect(isDatabaseUnavailable(Object.assign(new Error('E11000'), { name: 'MongoServerError', code: 11000 }))).toBe(
      false,
    );
    expect(isDatabaseUnavailable(new Error('bad'))).toBe(false);
    expect(isDatabaseUnavailable('not primary')).toBe(false);
  });

  it('repeats an operation while the database is unavailable, then answers as it does', async () => {
    let attempts = 0;
    const result = await retryWhileUnavailable(
      async () => {
        if (++attempts < 3) throw notPrimary();
        return 'done';
      },
      { withinMs: 5000, delayMs: 10 },
    );
    expect({ result, attempts }).toEqual({ result: 'done', attempts: 3 });
  });

  it('gives up after its window with the last error, and never repeats another failure', async () => {
    let attempts = 0;
    const started = Date.now();
    await expect(
      retryWhileUnavailable(
        async () => {
          attempts++;
          throw notPrimary();
        },
        { withinMs: 200, delayMs: 20 },
      ),
    ).rejects.toMatchObject({ code: 10107 });
    expect(Date.now() - started).toBeLessThan(1000);
    expect(attempts).toBeGreaterThan(2);

    attempts = 0;
    const duplicate = Object.assign(new Error('E11000'), { code: 11000 });
    await expect(
      retryWhileUnavailable(
        async () => {
          attempts++;
          throw duplicate;
        },
        { withinMs: 1000, delayMs: 10 },
      ),
    ).rejects.toBe(duplicate);
    expect(attempts).toBe(1);
  });
});
