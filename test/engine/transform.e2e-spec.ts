import { createHash } from 'node:crypto';
import type { INestApplicationContext } from '@nestjs/common';
import { ObjectId } from 'mongodb';
import { RerunScheduler } from '../../src/rerun/rerun-scheduler.service';
import {
  insertChannel,
  insertTask,
  insertTransactions,
  readItems,
  waitForTaskStatus,
} from '../support/database-fixtures';
import { OpenhimCoreStub } from '../support/openhim-core-stub';
import { TcpStub } from '../support/tcp-stub';
import { TestEnvironment } from '../support/test-environment';

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

const patient = (id: number, gender: string) =>
  JSON.stringify({ resourceType: 'Patient', id: `p${id}`, gender, name: [{ family: `Doe${id}` }] });

/**
 * "Fix, then rerun" in the engine: what reaches OpenHIM core for a task that transforms its
 * requests (JSON Patch, text replacement, headers, path, single edits, TCP), what the items record,
 * and that the original transactions are never changed.
 */
describe('Rerun engine: transformed reruns', () => {
  let env: TestEnvironment;
  let stub: OpenhimCoreStub;
  let worker: INestApplicationContext;
  let scheduler: RerunScheduler;

  beforeAll(async () => {
    env = await TestEnvironment.start();
    stub = await OpenhimCoreStub.start(env.db);
    worker = await env.startWorker({
      RERUN_HOST: '127.0.0.1',
      RERUN_HTTP_PORT: String(stub.port),
      RERUN_RETRY_WINDOW_MS: '0',
      WORKER_LEASE_MS: '2000',
      SWEEP_INTERVAL_MS: '300',
      WORKER_FLUSH_MS: '50',
      AUTO_PAUSE_AFTER_FAILURES: '0',
    });
    scheduler = worker.get(RerunScheduler);
  });

  afterAll(async () => {
    await env?.stop();
    await stub?.close();
  });

  beforeEach(() => stub.behave({}));

  async function run(tids: string[], fields: Record<string, unknown>, edits: Record<string, unknown> = {}) {
    const taskId = await insertTask(env.db, tids, { batchSize: 2 });
    await env.db.collection('tasks').updateOne({ _id: new ObjectId(taskId) }, { $set: fields });
    for (const [tid, edit] of Object.entries(edits)) {
      await env.db.collection('taskitems').updateOne({ taskId: new ObjectId(taskId), tid }, { $set: { edit } });
    }
    await scheduler.schedule(taskId, 2);
    await waitForTaskStatus(env.db, taskId, 'Completed');
    return taskId;
  }

  /** The stored requests of the originals (core itself adds the child's id to `childIDs`). */
  const originals = async (tids: string[]) =>
    (
      await env.db
        .collection('transactions')
        .find({ _id: { $in: tids.map((tid) => new ObjectId(tid)) } })
        .sort({ _id: 1 })
        .toArray()
    ).map((transaction) => ({ _id: transaction._id, request: transaction.request, status: transaction.status }));

  it('sends FHIR bodies fixed by a JSON Patch, fails (unsent) those it cannot apply to, and leaves the originals as they were', async () => {
    const bodies = [patient(0, 'M'), patient(1, 'F'), JSON.stringify({ resourceType: 'Observation', id: 'o2' })];
    const tids = await insertTransactions(env.db, 3, (index) => ({
      method: 'POST',
      path: '/fhir/Patient',
      headers: { 'content-type': 'application/fhir+json' },
      body: bodies[index],
    }));
    const before = await originals(tids);
    const transform = {
      body: [
        { op: 'test', path: '/resourceType', value: 'Patient' },
        { op: 'replace', path: '/gender', value: 'unknown' },
        { op: 'add', path: '/active', value: true },
      ],
    };
    const taskId = await run(tids, { transform });

    const received = stub.forTask(taskId);
    expect(received.map((request) => request.parentId).sort()).toEqual(tids.slice(0, 2).sort());
    for (const request of received) {
      const index = tids.indexOf(request.parentId!);
      expect(JSON.parse(request.body)).toEqual({ ...JSON.parse(bodies[index]), gender: 'unknown', active: true });
      expect(request.headers['content-length']).toBe(String(Buffer.byteLength(request.body)));
    }
    const items = await readItems(env.db, taskId);
    for (const request of received) {
      const item = items.find((candidate) => candidate.tid === request.parentId)!;
      expect(item).toMatchObject({ tstatus: 'Completed', rerunStatus: 'Successful', bodySha256: sha256(request.body) });
    }
    expect(items[2]).toMatchObject({
      tstatus: 'Failed',
      error: expect.stringMatching(/^The transform could not be applied: transform\.body\[0\] \(test \/resourceType\)/),
    });
    expect(await originals(tids)).toEqual(before);
  });

  it('sends an HL7 v2 message fixed by a text replacement, headers set and removed, and a rewritten path', async () => {
    const hl7 = (index: number) =>
      `MSH|^~\\&|LAB|HOSP|EMR|HOSP|20261208||ORU^R01|${index}|P|2.5\rPID|1||${index}^^^BADAUTH^MR\rOBX|1|NM|GLU||5.${index}|mmol/L`;
    const tids = await insertTransactions(env.db, 2, (index) => ({
      method: 'POST',
      path: '/hl7/v1/in',
      querystring: 'source=lab',
      headers: { 'content-type': 'application/hl7-v2', 'x-legacy': 'yes', 'x-route': 'old' },
      body: hl7(index),
    }));
    const before = await originals(tids);
    const taskId = await run(tids, {
      transform: {
        bodyReplace: { pattern: '\\^\\^\\^BADAUTH\\^', replacement: '^^^HOSP^', flags: 'g' },
        headers: { set: { 'X-Route': 'new', 'X-Fixed-By': 'incident-4711' }, remove: ['x-legacy'] },
        path: { pattern: '^/hl7/v1/', replacement: '/hl7/v2/', flags: '' },
      },
    });
    const received = stub.forTask(taskId).sort((a, b) => tids.indexOf(a.parentId!) - tids.indexOf(b.parentId!));
    expect(received.map((request) => request.body)).toEqual(
      [0, 1].map((i) => hl7(i).replace('^^^BADAUTH^', '^^^HOSP^')),
    );
    for (const request of received) {
      expect(request.url).toBe('/hl7/v2/in?source=lab');
      expect(request.headers['x-route']).toBe('new');
      expect(request.headers['x-fixed-by']).toBe('incident-4711');
      expect(request.headers).not.toHaveProperty('x-legacy');
      expect(request.headers['content-type']).toBe('application/hl7-v2');
    }
    expect(await originals(tids)).toEqual(before);
  });

  it("sends a single transaction's edit in place of its body and headers", async () => {
    const tids = await insertTransactions(env.db, 2, (index) => ({
      method: 'PUT',
      path: '/fhir/Patient/p' + index,
      headers: { 'content-type': 'application/fhir+json' },
      body: patient(index, 'M'),
    }));
    const edited = patient(1, 'F');
    const taskId = await run(
      tids,
      { hasEdits: true },
      { [tids[1]]: { body: edited, headers: { 'X-Edited': 'by hand' } } },
    );
    const byTid = new Map(stub.forTask(taskId).map((request) => [request.parentId, request]));
    expect(byTid.get(tids[0])?.body).toBe(patient(0, 'M'));
    expect(byTid.get(tids[0])?.headers).not.toHaveProperty('x-edited');
    expect(byTid.get(tids[1])?.body).toBe(edited);
    expect(byTid.get(tids[1])?.headers['x-edited']).toBe('by hand');
    const items = await readItems(env.db, taskId);
    expect(items.map((item) => item.bodySha256)).toEqual([sha256(patient(0, 'M')), sha256(edited)]);
  });

  it('transforms the body of a tcp channel before it is written to the socket', async () => {
    const tcp = await TcpStub.start((received) => `ACK ${received.length}`);
    try {
      const channelID = await insertChannel(env.db, { type: 'tcp', tcpHost: '127.0.0.1', tcpPort: tcp.port });
      const tids = await insertTransactions(env.db, 1, () => ({ channelID, body: 'PID|1||7^^^BADAUTH^MR' }));
      const taskId = await run(tids, { transform: { bodyReplace: { pattern: 'BADAUTH', replacement: 'HOSP' } } });
      expect(tcp.exchanges.map((exchange) => exchange.received)).toEqual(['PID|1||7^^^HOSP^MR']);
      expect((await readItems(env.db, taskId))[0]).toMatchObject({
        tstatus: 'Completed',
        rerunStatus: 'Completed',
        bodySha256: sha256('PID|1||7^^^HOSP^MR'),
      });
    } finally {
      await tcp.close();
    }
  });
});
