import { access, constants, mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { openFsBlobStore } from './fs-blob-store.ts';
import { PostgresStore } from './postgres/postgres-store.ts';
import { SqliteStore } from './sqlite/sqlite-store.ts';
import type { Store } from './store.ts';
import { StoreUnavailableError } from './store-errors.ts';

export interface OpenStoreOptions {
  /** The blob directory: default `<dir>/blobs` for a local store, `.rewind/blobs` for PostgreSQL. */
  blobs?: string;
  /** PostgreSQL only: the schema holding Rewind's tables (default `rewind`). */
  schema?: string;
}

const POSTGRES_URL = /^postgres(?:ql)?:\/\//i;

export function isPostgresLocation(location: string): boolean {
  return POSTGRES_URL.test(location);
}

/**
 * Opens a store: a `postgres://` or `postgresql://` URL is PostgreSQL (blobs on the local
 * filesystem); anything else is a directory holding the embedded store: SQLite at
 * `<dir>/rewind.db`, blobs at `<dir>/blobs` (created when missing).
 */
export async function openStore(location: string, options: OpenStoreOptions = {}): Promise<Store> {
  if (isPostgresLocation(location)) {
    const blobsDir = resolve(options.blobs ?? join('.rewind', 'blobs'));
    return PostgresStore.open(location, {
      blobs: () => openFsBlobStore(blobsDir),
      ...(options.schema === undefined ? {} : { schema: options.schema }),
    });
  }
  const dir = resolve(location);
  try {
    await mkdir(dir, { recursive: true });
    await access(dir, constants.W_OK);
  } catch (error) {
    throw new StoreUnavailableError(
      dir,
      `cannot use ${dir} as the Rewind store directory: ${(error as Error).message}; choose a writable directory (e.g. --store ./.rewind) or fix its permissions`,
      { cause: error },
    );
  }
  const blobs = await openFsBlobStore(
    options.blobs === undefined ? join(dir, 'blobs') : resolve(options.blobs),
  );
  try {
    return await SqliteStore.open(dir, { blobs });
  } catch (error) {
    await blobs.close();
    throw error;
  }
}
