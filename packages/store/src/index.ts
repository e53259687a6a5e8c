export * from './blob-errors.ts';
export * from './blob-store.ts';
export * from './fs-blob-store.ts';
export * from './open.ts';
export * from './payload.ts';
export { PostgresStore, type PostgresStoreOptions } from './postgres/postgres-store.ts';
export { SqliteStore, type SqliteStoreOptions } from './sqlite/sqlite-store.ts';
export * from './store.ts';
export * from './store-errors.ts';
