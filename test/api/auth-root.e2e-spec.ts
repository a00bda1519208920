import bcryptjs from 'bcryptjs';
import request from 'supertest';
import { ROOT_EMAIL, ROOT_PASSWORD, passwordRecord, sha512, tokenHeaders } from '../support/openhim-auth';
import { basicAuthorization } from '../support/openhim-clients';
import { TestEnvironment } from '../support/test-environment';

const ROOT_SALT = 'd9bcb40e-ae65-478f-962e-5e5e5e7d0a01';
const ROOT_HASH =
  '943a856bba65aad6c639d5c8d4a11fc8bb7fe9de62ae307aec8cf6ae6c1faab722127964c71db4bdd2ea2cdf60c6e4094dcad54d4522ab2839b65ae98100d0fb';

/** OpenHIM's default root user, created on start when absent (CREATE_DEFAULT_ROOT). */
describe('default root user', () => {
  let env: TestEnvironment;

  beforeAll(async () => {
    env = await TestEnvironment.start();
  });
  afterAll(() => env?.stop());

  const users = () => env.db.collection('users');
  const passports = () => env.db.collection('passports');
  const forget = async () => {
    await users().deleteMany({});
    await passports().deleteMany({});
  };

  it("creates exactly OpenHIM's user, token passport and OpenHIM 8's bcrypt local passport, and they work", async () => {
    await forget();
    const { baseUrl } = await env.startApi({ AUTH_FAILURE_LIMIT: '0' });

    const roots = await users().find({ email: ROOT_EMAIL }).toArray();
    expect(roots).toHaveLength(1);
    const { _id: userId, __v: _version, ...user } = roots[0];
    expect(user).toEqual({
      firstname: 'Super',
      surname: 'User',
      email: ROOT_EMAIL,
      passwordAlgorithm: 'sha512',
      passwordHash: ROOT_HASH,
      passwordSalt: ROOT_SALT,
      groups: ['admin'],
    });
    expect(sha512(ROOT_SALT + ROOT_PASSWORD)).toBe(ROOT_HASH);

    const rootPassports = await passports().find({ email: ROOT_EMAIL }).sort({ protocol: -1 }).toArray();
    expect(rootPassports.map((passport) => passport.protocol)).toEqual(['token', 'local']);
    const { _id: _passportId, __v: _passportVersion, user: owner, ...passport } = rootPassports[0];
    expect(passport).toEqual({
      protocol: 'token',
      email: ROOT_EMAIL,
      passwordAlgorithm: 'sha512',
      passwordHash: ROOT_HASH,
      passwordSalt: ROOT_SALT,
    });
    expect(String(owner)).toBe(String(userId));
    // OpenHIM 8 (bcryptjs, cost api.salt = 10) checks its console login against this one.
    const { _id: _localId, __v: _localVersion, user: localOwner, password: bcryptHash, ...local } = rootPassports[1];
    expect(local).toEqual({ protocol: 'local', email: ROOT_EMAIL });
    expect(String(localOwner)).toBe(String(userId));
    expect(bcryptjs.getRounds(bcryptHash)).toBe(10);
    expect(await bcryptjs.compare(ROOT_PASSWORD, bcryptHash)).toBe(true);

    await request(baseUrl)
      .get('/tasks')
      .set(tokenHeaders(ROOT_EMAIL, ROOT_PASSWORD, ROOT_SALT))
      .expect(200);
    await request(baseUrl)
      .get('/tasks')
      .set({ authorization: basicAuthorization(ROOT_EMAIL, ROOT_PASSWORD) })
      .expect(200);
  });

  it('leaves an existing root alone (another password, no passport created)', async () => {
    await forget();
    const record = passwordRecord('changed-password');
    await users().insertOne({ email: ROOT_EMAIL, firstname: 'Own', surname: 'Root', groups: ['admin'], ...record });
    const { baseUrl } = await env.startApi({ AUTH_FAILURE_LIMIT: '0' });

    expect(await users().countDocuments({})).toBe(1);
    expect(await users().findOne({ email: ROOT_EMAIL })).toMatchObject({
      firstname: 'Own',
      passwordHash: record.passwordHash,
    });
    expect(await passports().countDocuments({})).toBe(0);
    await request(baseUrl)
      .get('/tasks')
      .set(tokenHeaders(ROOT_EMAIL, ROOT_PASSWORD, ROOT_SALT))
      .expect(401);
    await request(baseUrl)
      .get('/tasks')
      .set(tokenHeaders(ROOT_EMAIL, 'changed-password', record.passwordSalt))
      .expect(200);
  });

  it('is not recreated on restart, and two replicas starting together create one', async () => {
    await forget();
    await Promise.all([env.startApi(), env.startApi(), env.startApi()]);
    await env.startApi();
    expect(await users().countDocuments({ email: ROOT_EMAIL })).toBe(1);
    expect(await passports().countDocuments({ email: ROOT_EMAIL, protocol: 'token' })).toBe(1);
    expect(await passports().countDocuments({ email: ROOT_EMAIL, protocol: 'local' })).toBe(1);
  });

  it('CREATE_DEFAULT_ROOT=false creates nothing', async () => {
    await forget();
    const { baseUrl } = await env.startApi({ CREATE_DEFAULT_ROOT: 'false' });
    expect(await users().countDocuments({})).toBe(0);
    expect(await passports().countDocuments({})).toBe(0);
    await request(baseUrl).get(`/authenticate/${ROOT_EMAIL}`).expect(404);
  });

  it('the default password stops working once it is changed on the user, even with our passport left behind', async () => {
    // An OpenHIM < 7.2 updates only the user document when root's password changes.
    await forget();
    const { baseUrl } = await env.startApi({ AUTH_CACHE_MS: '0', AUTH_FAILURE_LIMIT: '0' });
    const record = passwordRecord('new-root-password');
    await users().updateOne({ email: ROOT_EMAIL }, { $set: record });

    await request(baseUrl)
      .get('/tasks')
      .set(tokenHeaders(ROOT_EMAIL, ROOT_PASSWORD, ROOT_SALT))
      .expect(401);
    const auth = await request(baseUrl).get(`/authenticate/${ROOT_EMAIL}`).expect(200);
    expect(auth.body.salt).toBe(record.passwordSalt);
    await request(baseUrl)
      .get('/tasks')
      .set(tokenHeaders(ROOT_EMAIL, 'new-root-password', record.passwordSalt))
      .expect(200);
    // Basic too: a root without OpenHIM 8's provider is checked against its sha fields, not our bcrypt passport.
    await request(baseUrl)
      .get('/tasks')
      .set({ authorization: basicAuthorization(ROOT_EMAIL, ROOT_PASSWORD) })
      .expect(401);
    await request(baseUrl)
      .get('/tasks')
      .set({ authorization: basicAuthorization(ROOT_EMAIL, 'new-root-password') })
      .expect(200);
  });
});
