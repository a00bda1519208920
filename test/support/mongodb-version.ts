import type { MongoDBVersion, MongoWireServerOptions } from '@openhim-rerun/mongo-wire';

/**
 * The MongoDB release the embedded server announces in the tests: TEST_MONGODB_VERSION when set (CI
 * runs the suites that touch the database against the oldest supported release, 4.2, as well as the
 * default, the newest), else the package's default.
 */
export const TEST_MONGODB_VERSION = (process.env.TEST_MONGODB_VERSION || undefined) as MongoDBVersion | undefined;

/** Options for `new MongoWireServer(...)` that announce the tests' release. */
export function embeddedMongoOptions(): Pick<MongoWireServerOptions, 'mongodbVersion'> {
  return TEST_MONGODB_VERSION ? { mongodbVersion: TEST_MONGODB_VERSION } : {};
}

/** Arguments for the embedded server's command line that announce the tests' release. */
export function mongoWireVersionArgs(): string[] {
  return TEST_MONGODB_VERSION ? ['--mongodb-version', TEST_MONGODB_VERSION] : [];
}
