import { createHash, randomBytes } from 'node:crypto';
import type { Db } from 'mongodb';
import { ObjectId } from 'mongodb';
import { ROOT_EMAIL, ROOT_PASSWORD } from '../../support/openhim-auth';
import { waitFor } from '../../support/wait';
import type { OpenhimCore } from './core-process';
import { apiCall, request } from '../../support/http';

export const ROOT = { email: ROOT_EMAIL, password: ROOT_PASSWORD };

/** The client and channel the tests create through core's own API. */
export const E2E_CLIENT = { clientID: 'e2e-client', password: 'e2e-client-password' };
export const E2E_CHANNEL_PATH = '/e2e/patients';

export interface CoreChannel {
  clientId: ObjectId;
  channelId: ObjectId;
}

/**
 * Through core's API (token auth as root): a client with a Basic-auth password (core 4 hashes
 * clients as sha512(password + salt)) and a private http channel routing to the upstream.
 */
export async function createClientAndChannel(
  core: OpenhimCore,
  db: Db,
  upstreamPort: number,
  name = 'E2E',
): Promise<CoreChannel> {
  const salt = randomBytes(8).toString('hex');
  const client = await apiCall(core.apiUrl, ROOT, '/clients', {
    method: 'POST',
    body: {
      clientID: E2E_CLIENT.clientID,
      name: 'E2E client',
      roles: ['e2e'],
      passwordAlgorithm: 'sha512',
      passwordSalt: salt,
      passwordHash: createHash('sha512')
        .update(E2E_CLIENT.password + salt)
        .digest('hex'),
    },
  });
  if (client.status !== 201) throw new Error(`core POST /clients: ${client.status} ${client.body}`);
  const channel = await apiCall(core.apiUrl, ROOT, '/channels', {
    method: 'POST',
    body: {
      name,
      urlPattern: `^${E2E_CHANNEL_PATH}.*$`,
      allow: ['e2e'],
      authType: 'private',
      type: 'http',
      txRerunAcl: ['rerunners'],
      routes: [{ name: 'upstream', host: '127.0.0.1', port: upstreamPort, primary: true, type: 'http' }],
    },
  });
  if (channel.status !== 201) throw new Error(`core POST /channels: ${channel.status} ${channel.body}`);
  const clientDoc = await db.collection('clients').findOne({ clientID: E2E_CLIENT.clientID });
  const channelDoc = await db.collection('channels').findOne({ name });
  if (!clientDoc || !channelDoc) throw new Error('core did not store the client or the channel');
  return { clientId: clientDoc._id as ObjectId, channelId: channelDoc._id as ObjectId };
}

/** The body of the i-th original request (unique, so upstream counts can be told apart). */
export const originalBody = (tag: string, i: number) => JSON.stringify({ resourceType: 'Patient', id: `${tag}-${i}` });

/**
 * Sends `count` POSTs through core's HTTP router as the e2e client (Basic auth), `parallel` at a
 * time, and waits until core has stored each transaction's final status. Returns their ids in order.
 */
export async function routeRequests(
  core: OpenhimCore,
  db: Db,
  tag: string,
  count: number,
  parallel = 8,
): Promise<string[]> {
  const basic = `Basic ${Buffer.from(`${E2E_CLIENT.clientID}:${E2E_CLIENT.password}`).toString('base64')}`;
  const ids: string[] = new Array(count);
  let next = 0;
  const lane = async () => {
    while (next < count) {
      const i = next++;
      const answer = await request(`${core.routerUrl}${E2E_CHANNEL_PATH}?tag=${tag}&i=${i}`, {
        method: 'POST',
        headers: { authorization: basic, 'content-type': 'application/json' },
        body: originalBody(tag, i),
      });
      const id = answer.headers['x-openhim-transactionid'];
      if (answer.status !== 200 || typeof id !== 'string')
        throw new Error(`core router: ${answer.status} ${answer.body}`);
      ids[i] = id;
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, lane));
  const objectIds = ids.map((id) => new ObjectId(id));
  await waitFor(
    `core to finish ${count} transactions`,
    async () =>
      (await db.collection('transactions').countDocuments({ _id: { $in: objectIds }, status: 'Successful' })) === count,
    20000,
  );
  return ids;
}
