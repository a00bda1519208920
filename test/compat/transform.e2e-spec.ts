import { createHash } from 'node:crypto';
import type { INestApplicationContext } from '@nestjs/common';
import type { Db } from 'mongodb';
import { ObjectId } from 'mongodb';
import { RerunScheduler } from '../../src/rerun/rerun-scheduler.service';
import { createClientAndChannel, E2E_CHANNEL_PATH, E2E_CLIENT } from './openhim-core/core-fixtures';
import { CORE_VERSION, OpenhimCore } from './openhim-core/core-process';
import { Upstream } from './openhim-core/upstream';
import { insertTask, readItems, waitForTaskStatus } from '../support/database-fixtures';
import { request } from '../support/http';
import { waitFor } from '../support/wait';
import { TestEnvironment } from '../support/test-environment';

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

/** A FHIR Patient as the buggy mapping sent it: `gender` holds a code FHIR does not know. */
const patient = (i: number) =>
  JSON.stringify({
    resourceType: 'Patient',
    id: `tx-${i}`,
    meta: { profile: ['http://hl7.org/fhir/StructureDefinition/Patient'] },
    identifier: [{ system: 'urn:oid:2.16.840.1.113883.2.1.4.1', value: `90000${i}` }],
    name: [{ family: `Doe${i}`, given: ['Jane'] }],
    gender: 'F',
    birthDate: '1980-01-0' + (i + 1),
  });
/** Not a Patient: the patch's `test` fails on it, so it must not be sent. */
const observation = JSON.stringify({ resourceType: 'Observation', id: 'obs-1', status: 'final' });

/** The fix: a JSON Patch, a header set and one removed, and a path (+ query string) rewrite. */
const TRANSFORM = {
  body: [
    { op: 'test', path: '/resourceType', value: 'Patient' },
    { op: 'replace', path: '/gender', value: 'female' },
    { op: 'add', path: '/active', value: true },
  ],
  headers: { set: { 'X-Fixed-By': 'incident-4711' }, remove: ['x-mapping-version'] },
  // Core routes a rerun by the original's channel, not by matching the path again: any path may go.
  path: { pattern: '^/e2e/patients\\?tag=(\\w+)&', replacement: '/e2e/patients/v2?tag=$1&fixed=1&', flags: '' },
};
const patched = (body: string) => JSON.stringify({ ...JSON.parse(body), gender: 'female', active: true });

/**
 * "Fix, then rerun" (issue 24) through a real OpenHIM core 4.0.5: a task whose transform patches
 * the body, sets and removes headers and rewrites the path is rerun through core's rerun port; the
 * child core stores (`parentID` the original) holds the request as sent, the original is unchanged,
 * and each item's `bodySha256` is the SHA-256 of the child's stored body. The task is written to
 * the database directly (its `transform` as the API stores it, validated).
 */
describe(`Fix, then rerun, through a real OpenHIM core ${CORE_VERSION}`, () => {
  let env: TestEnvironment;
  let core: OpenhimCore;
  let upstream: Upstream;
  let worker: INestApplicationContext;
  let scheduler: RerunScheduler;

  beforeAll(async () => {
    env = await TestEnvironment.start();
    core = await OpenhimCore.start({ mongoUri: env.mongoUri });
    upstream = await Upstream.start();
    await createClientAndChannel(core, env.db, upstream.port);
    worker = await env.startWorker({
      RERUN_HOST: '127.0.0.1',
      RERUN_HTTP_PORT: String(core.ports.rerun),
      WORKER_LEASE_MS: '2000',
      RERUN_RETRY_SETTLE_MS: '1000',
      SWEEP_INTERVAL_MS: '300',
      WORKER_FLUSH_MS: '50',
      AUTO_PAUSE_AFTER_FAILURES: '0',
    });
    scheduler = worker.get(RerunScheduler);
  }, 120000);

  afterAll(async () => {
    await core?.stop();
    await upstream?.close();
    await env?.stop();
  });

  const transactions = () => env.db.collection('transactions');

  it("stores the transformed request as core's child of the original; the original is unchanged; bodySha256 is the child's body's", async () => {
    const bodies = [patient(0), patient(1), patient(2), observation];
    const tids = await routeFhir(core, env.db, 'fix', bodies);
    const before = await transactions()
      .find({ _id: { $in: tids.map((tid) => new ObjectId(tid)) } })
      .toArray();
    const requestsBefore = new Map(before.map((transaction) => [String(transaction._id), transaction.request]));
    // What core stored of the originals: path, query, the header to remove, the FHIR media type.
    for (const [i, tid] of tids.entries()) {
      expect(requestsBefore.get(tid)).toMatchObject({
        method: 'POST',
        path: E2E_CHANNEL_PATH,
        querystring: `tag=fix&i=${i}`,
        body: bodies[i],
        headers: { 'content-type': 'application/fhir+json', 'x-mapping-version': '1.2' },
      });
    }

    const taskId = await insertTask(env.db, tids, { batchSize: 2 });
    await env.db.collection('tasks').updateOne({ _id: new ObjectId(taskId) }, { $set: { transform: TRANSFORM } });
    await scheduler.schedule(taskId, 2);
    await waitForTaskStatus(env.db, taskId, 'Completed');
    const items = new Map((await readItems(env.db, taskId)).map((item) => [item.tid as string, item]));

    for (const [i, tid] of tids.slice(0, 3).entries()) {
      const children = await transactions()
        .find({ parentID: new ObjectId(tid) })
        .toArray();
      expect(children).toHaveLength(1);
      const [child] = children;
      // The child holds the request as sent: patched body, headers, rewritten path and query string.
      expect(child.status).toBe('Successful');
      expect(child.request).toMatchObject({
        method: 'POST',
        path: `${E2E_CHANNEL_PATH}/v2`,
        querystring: `tag=fix&fixed=1&i=${i}`,
        body: patched(bodies[i]),
      });
      expect(child.request.headers).toMatchObject({
        'content-type': 'application/fhir+json',
        'x-fixed-by': 'incident-4711',
        'content-length': String(Buffer.byteLength(child.request.body)),
      });
      expect(child.request.headers).not.toHaveProperty('x-mapping-version');
      // The item: completed, linked to the child, and the hash of the body core stored.
      expect(items.get(tid)).toMatchObject({
        tstatus: 'Completed',
        rerunID: child._id.toHexString(),
        rerunStatus: 'Successful',
        bodySha256: sha256(child.request.body),
      });
      // And core forwarded the same request to the channel's upstream.
      const arrived = upstream.requests.filter(
        (request) => request.headers['x-openhim-transactionid'] === child._id.toHexString(),
      );
      expect(arrived).toHaveLength(1);
      expect(arrived[0]).toMatchObject({
        method: 'POST',
        url: `${E2E_CHANNEL_PATH}/v2?tag=fix&fixed=1&i=${i}`,
        body: patched(bodies[i]),
      });
      expect(arrived[0].headers['x-fixed-by']).toBe('incident-4711');
      expect(arrived[0].headers).not.toHaveProperty('x-mapping-version');
    }

    // The Observation: the patch's test failed, so nothing was sent and core has no child of it.
    expect(items.get(tids[3])).toMatchObject({
      tstatus: 'Failed',
      error: expect.stringMatching(/^The transform could not be applied: transform\.body\[0\] \(test \/resourceType\)/),
    });
    expect(await transactions().countDocuments({ parentID: new ObjectId(tids[3]) })).toBe(0);
    expect(upstream.requests.filter((request) => request.body.includes('"Observation"'))).toHaveLength(1);

    // The originals: the request byte for byte as before (core only links the children).
    const after = await transactions()
      .find({ _id: { $in: tids.map((tid) => new ObjectId(tid)) } })
      .toArray();
    for (const transaction of after) {
      expect(transaction.request).toEqual(requestsBefore.get(String(transaction._id)));
      expect(transaction.request.body).toBe(bodies[tids.indexOf(String(transaction._id))]);
    }
  });

  it('core stayed healthy: nothing in its log went wrong', () => {
    expect(core.errors()).toEqual([]);
  });
});

/**
 * POSTs each body through core's router on the e2e channel as the e2e client, as FHIR JSON with a
 * header the fix removes; waits until core has stored each one's final status. Returns their ids.
 */
async function routeFhir(core: OpenhimCore, db: Db, tag: string, bodies: string[]): Promise<string[]> {
  const basic = `Basic ${Buffer.from(`${E2E_CLIENT.clientID}:${E2E_CLIENT.password}`).toString('base64')}`;
  const ids: string[] = [];
  for (const [i, body] of bodies.entries()) {
    const answer = await request(`${core.routerUrl}${E2E_CHANNEL_PATH}?tag=${tag}&i=${i}`, {
      method: 'POST',
      headers: { authorization: basic, 'content-type': 'application/fhir+json', 'x-mapping-version': '1.2' },
      body,
    });
    const id = answer.headers['x-openhim-transactionid'];
    if (answer.status !== 200 || typeof id !== 'string')
      throw new Error(`core router: ${answer.status} ${answer.body}`);
    ids.push(id);
  }
  const objectIds = ids.map((id) => new ObjectId(id));
  await waitFor(
    `core to finish ${ids.length} transactions`,
    async () =>
      (await db.collection('transactions').countDocuments({ _id: { $in: objectIds }, status: 'Successful' })) ===
      ids.length,
    20000,
  );
  return ids;
}
