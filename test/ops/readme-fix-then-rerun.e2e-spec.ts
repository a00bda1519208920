import { createHash } from 'node:crypto';
import { ObjectId } from 'mongodb';
import { OpenhimCoreStub } from '../support/openhim-core-stub';
import { TestEnvironment } from '../support/test-environment';
import { waitFor } from '../support/wait';
import { bash, readmeExample } from '../support/readme-blocks';

const README_URL = 'https://localhost:8080';
const PATIENT = '65f0c0ffee0000000000b001';
const OBSERVATION = '65f0c0ffee0000000000b002';
const CHANNEL = new ObjectId('5bb777777bbb66cc5d4444ab');
const PATIENT_BODY = JSON.stringify({ resourceType: 'Patient', id: 'p1', gender: 'M' });
const OBSERVATION_BODY = JSON.stringify({ resourceType: 'Observation', id: 'o1', status: 'final' });

/**
 * README "Fix, then rerun", the worked example, pasted as an operator would (URL pointed at this
 * test's API): the preview counts and shows the fix, creates nothing; the task sends the fixed
 * Patient to core, never the Observation, and records what it sent.
 */
describe('README Fix, then rerun example', () => {
  let env: TestEnvironment;
  let stub: OpenhimCoreStub;
  let baseUrl: string;

  beforeAll(async () => {
    env = await TestEnvironment.start();
    stub = await OpenhimCoreStub.start(env.db);
    await env.db.collection('channels').insertOne({ _id: CHANNEL, name: 'Registry', txRerunAcl: [] });
    await env.db.collection('transactions').insertMany(
      [
        [PATIENT, PATIENT_BODY],
        [OBSERVATION, OBSERVATION_BODY],
      ].map(([tid, body]) => ({
        _id: new ObjectId(tid),
        channelID: CHANNEL,
        status: 'Failed',
        canRerun: true,
        request: {
          method: 'POST',
          path: '/fhir',
          headers: { 'content-type': 'application/fhir+json' },
          body,
          timestamp: new Date(),
        },
      })),
    );
    ({ baseUrl } = await env.startApi(
      { AUTH_FAILURE_LIMIT: '0', RERUN_HOST: '127.0.0.1', RERUN_HTTP_PORT: String(stub.port), WORKER_FLUSH_MS: '50' },
      { withWorker: true },
    ));
  });
  afterAll(async () => {
    await env?.stop();
    await stub?.close();
  });

  it('answers as the README says', async () => {
    const { prelude, commands } = await readmeExample('fix-example');
    expect(commands).toHaveLength(2);
    const run = async (command: string) => {
      const result = await bash(`${prelude}\n${command.replaceAll(README_URL, baseUrl)}`);
      expect({ command, code: result.code, stderr: result.code ? result.stderr : '' }).toEqual({
        command,
        code: 0,
        stderr: '',
      });
      return result.stdout;
    };
    const [preview, create] = commands;
    const tasksBefore = await env.db.collection('tasks').countDocuments();

    const fixed = {
      resourceType: 'Patient',
      id: 'p1',
      gender: 'male',
      meta: { tag: [{ code: 'fixed-incident-4711' }] },
    };
    const answer = JSON.parse(await run(preview));
    expect(answer).toMatchObject({ dryRun: true, matched: 2, applies: 1, unchanged: 0, fails: 1 });
    expect(JSON.parse(answer.samples[0].before.body)).toEqual(JSON.parse(PATIENT_BODY));
    expect(JSON.parse(answer.samples[0].after.body)).toEqual(fixed);
    expect(answer.samples[1]).toMatchObject({
      tid: OBSERVATION,
      after: null,
      error: expect.stringContaining('The transform could not be applied: transform.body[0] (test /resourceType)'),
    });
    expect(await env.db.collection('tasks').countDocuments()).toBe(tasksBefore);

    const created = await run(create);
    expect(created).toMatch(/^User root@openhim\.org created task with id [0-9a-f]{24}$/);
    const taskId = new ObjectId(created.slice(-24));
    await waitFor('the task to complete', async () => {
      const task = await env.db.collection('tasks').findOne({ _id: taskId });
      return task?.status === 'Completed';
    });
    const received = stub.forTask(taskId.toHexString());
    expect(received.map((request) => request.parentId)).toEqual([PATIENT]);
    expect(JSON.parse(received[0].body)).toEqual(fixed);
    expect(received[0].headers['x-fixed-by']).toBe('incident-4711');

    const task = await env.db.collection('tasks').findOne({ _id: taskId });
    expect(task?.history?.[0]?.reason).toContain(
      'transforms its requests: body (JSON Patch, 3 operations), headers (set 1)',
    );
    const items = await env.db.collection('taskitems').find({ taskId }).sort({ seq: 1 }).toArray();
    expect(items[0]).toMatchObject({
      tstatus: 'Completed',
      bodySha256: createHash('sha256').update(received[0].body).digest('hex'),
    });
    expect(items[1]).toMatchObject({ tstatus: 'Failed', error: expect.stringContaining('test /resourceType') });
  });
});
