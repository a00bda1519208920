import { OpenhimCore } from './openhim-core/core-process';
import { authHeaders, differingParts, Observed, runSide, seedStatic } from './openhim-core/differential';
import { CASES } from './openhim-core/differential-cases';
import { DIFFERENCES } from './openhim-core/differences';
import { TestEnvironment } from '../support/test-environment';

/**
 * Differential tests: each request of differential-cases.ts goes to OpenHIM core 4.0.5's tasks API
 * and to ours, each time from the same database state; status, media type, body and (for writes)
 * the state left behind must be the same, or the difference must be listed in differences.ts.
 */
describe('Differential: our tasks API vs OpenHIM core 4.0.5', () => {
  let env: TestEnvironment;
  let core: OpenhimCore;
  let ourUrl: string;
  const differing = new Map<string, { openhim: Observed; ours: Observed; parts: string[] }>();

  beforeAll(async () => {
    env = await TestEnvironment.start();
    core = await OpenhimCore.start({ mongoUri: env.mongoUri });
    await seedStatic(env.db);
    // Failure limits off: the cases send bad credentials on purpose, more than 20 a minute.
    ({ baseUrl: ourUrl } = await env.startApi({ AUTH_FAILURE_LIMIT: '0', LOG_LEVEL: 'fatal' }, { withWorker: false }));
  }, 90000);

  afterAll(async () => {
    await core?.stop();
    await env?.stop();
  });

  it.each(CASES.map((testCase) => [testCase.id, testCase] as const))('%s', async (id, testCase) => {
    // The same headers (salt, ts, token) go to both sides.
    const headers = await authHeaders(env.db, testCase.request.auth);
    const openhim = await runSide(env.db, core.apiUrl, testCase, headers);
    const ours = await runSide(env.db, ourUrl, testCase, headers);
    const parts = differingParts(openhim, ours);
    const listed = DIFFERENCES.filter((row) => id in row.cases);
    if (parts.length === 0) {
      expect({ id, listedIn: listed.map((row) => row.id) }).toEqual({ id, listedIn: [] });
      return;
    }
    differing.set(id, { openhim, ours, parts });
    const observed = { id, differs: parts, openhim: summary(openhim), ours: summary(ours) };
    // An unlisted difference fails here with both answers in the message.
    expect({ ...observed, listedIn: listed.map((row) => row.id) }).toEqual({
      ...observed,
      listedIn: [expect.any(String)],
    });
    expect([openhim.status, ours.status]).toEqual(listed[0].cases[id]);
  });

  it('every listed difference names known cases, and each of them was observed to differ', () => {
    const known = new Set(CASES.map((testCase) => testCase.id));
    expect(
      DIFFERENCES.filter((row) => Object.keys(row.cases).length === 0 && !row.pinnedBy).map((row) => row.id),
    ).toEqual([]);
    const stale = DIFFERENCES.flatMap((row) =>
      Object.keys(row.cases)
        .filter((id) => !known.has(id) || !differing.has(id))
        .map((id) => `${row.id}: ${id}`),
    );
    expect(stale).toEqual([]);
  });

  it('OpenHIM core did not crash (it logs errors for the bad requests, as expected)', () => {
    expect(core.crashes()).toEqual([]);
  });
});

function summary(observed: Observed) {
  const body = typeof observed.body === 'string' ? observed.body : JSON.stringify(observed.body);
  return `${observed.status} ${observed.mediaType} ${body.length > 300 ? `${body.slice(0, 300)}...` : body}`;
}
