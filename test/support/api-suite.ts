import type { INestApplication } from '@nestjs/common';
import type { MongoWireServerOptions } from '@openhim-rerun/mongo-wire';
import { seedUsersAndChannels, tokenSigner, UserName } from './fixtures';
import { TestEnvironment } from './test-environment';

export interface ApiSuite {
  env: TestEnvironment;
  app: INestApplication;
  baseUrl: string;
  /** Fresh token headers of a fixture user (USERS in fixtures.ts). */
  as: (user: UserName) => Record<string, string>;
}

/**
 * The `beforeAll` of the tasks API suites: a test environment, the API (without a worker unless
 * `withWorker`: lane jobs stay waiting) with AUTH_FAILURE_LIMIT=0 plus `overrides`, the fixture users
 * and channels, and a token signer for those users. Stop it with `env.stop()`.
 */
export async function startApiSuite(
  overrides: Record<string, string> = {},
  options: { withWorker?: boolean; mongo?: Partial<MongoWireServerOptions> } = {},
): Promise<ApiSuite> {
  const env = await TestEnvironment.start(options.mongo);
  try {
    const { app, baseUrl } = await env.startApi(
      { AUTH_FAILURE_LIMIT: '0', ...overrides },
      { withWorker: options.withWorker ?? false },
    );
    await seedUsersAndChannels(env.db);
    return { env, app, baseUrl, as: await tokenSigner(env.db) };
  } catch (error) {
    await env.stop();
    throw error;
  }
}
