export * from './user.schema';
export * from './passport.schema';
export * from './channel.schema';
export * from './transaction.schema';
export * from './auto-retry.schema';
export * from './task.schema';
export * from './session.schema';
export * from './rerun-hold.schema';
