import { OPENHIM_INDEXES, OpenhimIndexes } from '../../src/database/openhim-indexes';
import { TestEnvironment } from '../support/test-environment';

/** The indexes the service needs on OpenHIM's collections exist after a start (README, "Performance"). */
describe('indexes on OpenHIM collections', () => {
  let env: TestEnvironment;

  beforeAll(async () => {
    env = await TestEnvironment.start();
  });
  afterAll(() => env.stop());

  const keysOf = async (collection: string) =>
    (await env.db.collection(collection).indexes()).map((index) => ({ name: index.name, key: index.key }));

  it('are created at start, by the API and by the worker', async () => {
    const { app } = await env.startApi();
    await app.get(OpenhimIndexes).ready;
    for (const index of OPENHIM_INDEXES)
      expect(await keysOf(index.collection)).toContainEqual({ name: index.name, key: index.key });
    // The child lookups use it (no collection scan of transactions).
    const plan = await env.db
      .collection('transactions')
      .find({ parentID: { $in: ['5bb777777bbb66cc5d4444ee'] }, 'request.timestamp': { $gte: new Date(0) } })
      .explain();
    expect(JSON.stringify(plan)).toContain('parentID_1');

    const worker = await env.startWorker();
    await worker.get(OpenhimIndexes).ready;
    for (const index of OPENHIM_INDEXES)
      expect((await keysOf(index.collection)).filter((found) => found.name === index.name)).toHaveLength(1);
  });

  it('an index with the same key under another name (e.g. made by OpenHIM or an operator) is kept, not doubled', async () => {
    await env.db.collection('transactions').dropIndexes();
    await env.db.collection('transactions').createIndex({ parentID: 1 }, { name: 'by_parent' });
    const { app } = await env.startApi();
    await app.get(OpenhimIndexes).ready;
    const onParent = (await keysOf('transactions')).filter((index) => JSON.stringify(index.key) === '{"parentID":1}');
    expect(onParent).toEqual([{ name: 'by_parent', key: { parentID: 1 } }]);
  });
});
