import { setTimeout as sleep } from 'node:timers/promises';
import { ROOT_EMAIL, ROOT_PASSWORD } from '../support/openhim-auth';
import { httpsRequest, nodeClientHeaders, SAMPLE_TASK_BODY } from '../support/openhim-clients';
import { TestEnvironment } from '../support/test-environment';

const RATE_PER_SECOND = 5;
const DURATION_MS = 60_000;

/**
 * The docs' Node client asks GET /authenticate/:email before every request. A script polling a
 * task with it at its natural rate must be served for as long as it runs, with the default limits.
 */
describe('documented scripts at their natural rate', () => {
  let env: TestEnvironment;
  let baseUrl: string;

  beforeAll(async () => {
    env = await TestEnvironment.start();
    ({ baseUrl } = await env.startApi());
  });
  afterAll(() => env?.stop());

  it(
    `the Node client authenticating before every request at ${RATE_PER_SECOND}/s for ${DURATION_MS / 1000} s never sees a 429`,
    async () => {
      const created = await httpsRequest(baseUrl, {
        method: 'POST',
        path: '/tasks',
        headers: {
          ...(await nodeClientHeaders(baseUrl, ROOT_EMAIL, ROOT_PASSWORD)),
          'content-type': 'application/json',
        },
        body: SAMPLE_TASK_BODY,
      });
      expect(created.status).toBe(201);
      const taskId = /([0-9a-f]{24})$/.exec(created.body)![1];

      const statuses = new Map<number, number>();
      const started = Date.now();
      let requests = 0;
      for (let due = started; due < started + DURATION_MS; due += 1000 / RATE_PER_SECOND) {
        await sleep(Math.max(0, due - Date.now()));
        // nodeClientHeaders is the docs' genAuthHeaders: it GETs /authenticate/:email first.
        const headers = await nodeClientHeaders(baseUrl, ROOT_EMAIL, ROOT_PASSWORD);
        const poll = await httpsRequest(baseUrl, { path: `/tasks/${taskId}?filterPage=0&filterLimit=0`, headers });
        statuses.set(poll.status, (statuses.get(poll.status) ?? 0) + 1);
        requests++;
      }
      // Every poll answered (each after its own GET /authenticate, which throws on anything but 200).
      expect(Object.fromEntries(statuses)).toEqual({ 200: requests });
      expect(requests).toBe((DURATION_MS / 1000) * RATE_PER_SECOND);
    },
    DURATION_MS + 60_000,
  );
});
