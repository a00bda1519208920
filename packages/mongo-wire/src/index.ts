/**
 * A small MongoDB-wire-compatible in-memory server (bson + mingo), used where no mongod exists.
 * Standalone: imports nothing from the rest of the application.
 */
export { MongoWireServer } from './server';
export type { MongoWireServerOptions } from './server';
export { DEFAULT_MONGODB_VERSION, MONGODB_VERSIONS } from './versions';
export type { MongoDBVersion } from './versions';
export type { StepDownOptions } from './replica-set';
