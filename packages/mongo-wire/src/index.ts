/**
 * A small MongoDB-wire-compatible in-memory server (bson + mingo), used where no mongod exists.
 * Standalone: imports nothing from the rest of the application.
 */
export { MongoWireServer } from './server';
export type { MongoWireServerOptions } from './server';
