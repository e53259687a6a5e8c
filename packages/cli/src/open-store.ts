import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { RewindError } from '@rewind/schema';
import { isPostgresLocation, openStore, type Store } from '@rewind/store';
import { openStoreOptions, type StoreConfig } from './config.ts';
import { CliError, dataError } from './errors.ts';
import { oneLine } from './format.ts';

// Opening the configured store, with the CLI's messages for the ways that fails (exit code 3).

function describeSource(config: StoreConfig): string {
  switch (config.source) {
    case 'flag':
      return 'from --store';
    case 'env':
      return 'from $REWIND_STORE';
    case 'config':
      return `from ${config.configFile ?? 'rewind.config.json'}`;
    default:
      return 'the default store';
  }
}

/**
 * Opens the store. Reading commands (`create: false`) do not create a missing local store: they
 * say there is none, instead of leaving an empty `.rewind` (or a `rewind.db` in some other
 * directory) behind.
 */
export async function openConfiguredStore(config: StoreConfig, options: { create: boolean }): Promise<Store> {
  if (!options.create && !isPostgresLocation(config.store) && !existsSync(join(config.store, 'rewind.db'))) {
    throw dataError(
      `no Rewind store at ${config.display} (${describeSource(config)}) — record a run first (try \`npx rewind demo\`), or point --store, $REWIND_STORE or rewind.config.json at an existing store`,
    );
  }
  try {
    return await openStore(config.store, openStoreOptions(config));
  } catch (error) {
    throw storeError(config, error);
  }
}

/** A failure while talking to the store, as the CLI reports it. */
export function storeError(config: StoreConfig, error: unknown): CliError {
  if (error instanceof CliError) return error;
  const message = oneLine(error instanceof Error ? error.message : String(error));
  // The store's own errors (unreachable, too new, unwritable) already say what to do.
  if (RewindError.isInstance(error))
    return dataError(`${message} (${describeSource(config)})`, { cause: error });
  return dataError(
    `cannot read the store at ${config.display} (${describeSource(config)}): ${message} — check that it is reachable and readable, or choose another with --store`,
    { cause: error },
  );
}

/** Runs a store operation, turning its failures into exit-code-3 errors. */
export async function guard<T>(config: StoreConfig, operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    throw storeError(config, error);
  }
}
