import { access, constants, mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { BlobStore } from './blob-store.ts';
import { openFsBlobStore } from './fs-blob-store.ts';
import { PostgresStore } from './postgres/postgres-store.ts';
import { isS3Location, openS3BlobStore } from './s3-blob-store.ts';
import { SqliteStore } from './sqlite/sqlite-store.ts';
import type { Store } from './store.ts';
import { StoreUnavailableError } from './store-errors.ts';

export interface OpenStoreOptions {
  /**
   * Where blobs go: a directory, or `s3://bucket/prefix` for an S3-compatible object store.
   * Default `<dir>/blobs` for a local store, `.rewind/blobs` for PostgreSQL.
   */
  blobs?: string;
  /** Where an s3:// blob location reads its AWS_* settings (default process.env). */
  env?: Record<string, string | undefined>;
  /** PostgreSQL only: the schema holding Rewind's tables (default `rewind`). */
  schema?: string;
}

const POSTGRES_URL = /^postgres(?:ql)?:\/\//i;

export function isPostgresLocation(location: string): boolean {
  return POSTGRES_URL.test(location);
}

/** Takes `?schema=<name>` off a PostgreSQL URL. */
export function splitPostgresSchema(url: string): { url: string; schema: string | undefined } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { url, schema: undefined };
  }
  const schema = parsed.searchParams.get('schema');
  if (schema === null) return { url, schema: undefined };
  parsed.searchParams.delete('schema');
  return { url: parsed.toString(), schema: schema === '' ? undefined : schema };
}

/** Opens the blob store at `location`: `s3://bucket/prefix` (the AWS SDK is loaded only then) or a directory. */
export async function openBlobStore(
  location: string,
  options: { env?: Record<string, string | undefined> } = {},
): Promise<BlobStore> {
  if (isS3Location(location))
    return openS3BlobStore(location, options.env === undefined ? {} : { env: options.env });
  return openFsBlobStore(resolve(location));
}

/**
 * Opens a store: a `postgres://` or `postgresql://` URL is PostgreSQL (blobs on the local
 * filesystem unless `blobs` says otherwise); anything else is a directory holding the embedded
 * store: SQLite at `<dir>/rewind.db`, blobs at `<dir>/blobs` (created when missing). `blobs` may
 * be `s3://bucket/prefix` for either.
 */
export async function openStore(location: string, options: OpenStoreOptions = {}): Promise<Store> {
  if (isPostgresLocation(location)) {
    const blobs = options.blobs ?? join('.rewind', 'blobs');
    // `?schema=` in the URL counts as much as the option: ignoring it would silently open `rewind`
    const named = splitPostgresSchema(location);
    if (named.schema !== undefined && options.schema !== undefined && named.schema !== options.schema)
      throw new StoreUnavailableError(
        location.replace(/\/\/[^@/]*@/, '//'),
        `the store URL names schema '${named.schema}' but the schema option says '${options.schema}': give one of them`,
      );
    const schema = options.schema ?? named.schema;
    return PostgresStore.open(named.url, {
      blobs: () => openBlobStore(blobs, options),
      ...(schema === undefined ? {} : { schema }),
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
  const blobs = await openBlobStore(options.blobs ?? join(dir, 'blobs'), options);
  try {
    return await SqliteStore.open(dir, { blobs });
  } catch (error) {
    await blobs.close();
    throw error;
  }
}
