import { readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { isPostgresLocation, type OpenStoreOptions } from '@rewind/store';

// Where the store lives. The CLI and the SDK resolve it with the same rules, so a run recorded
// by the SDK is found by `rewind runs` run in the same directory. Each setting is taken from the
// first place that gives it:
//
//   store:  --store <dir|postgres://…>   >  REWIND_STORE  >  rewind.config.json "store"  >  .rewind
//   blobs:  --blobs <dir>                >  REWIND_BLOBS  >  rewind.config.json "blobs"  >  the default:
//           <dir>/blobs for a directory store, .rewind/blobs for PostgreSQL (openStore's defaults)
//
// A PostgreSQL URL may name the schema holding Rewind's tables with `?schema=<name>` (default
// `rewind`); the parameter is taken off the URL and passed to openStore as its `schema` option.
// Relative directories are resolved against the working directory (the config file lives there,
// so its relative paths mean the same thing). A malformed config file is an error naming the file
// and the problem; it is only read when a setting is not given by a flag or an environment variable.

export const CONFIG_FILE_NAME = 'rewind.config.json';
export const DEFAULT_STORE = '.rewind';

export type SettingSource = 'flag' | 'env' | 'config' | 'default';

export interface StoreConfig {
  /** An absolute directory (SQLite + filesystem blobs) or a postgres:// URL (without `schema`), as passed to `openStore`. */
  store: string;
  /** PostgreSQL only: the schema named by the URL's `?schema=`, when it names one. */
  schema: string | undefined;
  /** The absolute blob directory. */
  blobs: string;
  /** Where `store` came from. */
  source: SettingSource;
  /** Where `blobs` came from. */
  blobsSource: SettingSource;
  /** The store as the user wrote it, password removed: for messages. */
  display: string;
  /** The config file that was read, when one was. */
  configFile: string | undefined;
}

export interface StoreConfigInput {
  /** The `--store` flag. */
  store?: string | undefined;
  /** The `--blobs` flag. */
  blobs?: string | undefined;
  env?: Record<string, string | undefined>;
  cwd?: string;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = 'invalid_config';
  readonly file: string;
  constructor(file: string, problem: string, options?: { cause?: unknown }) {
    super(`${file}: ${problem}`, options);
    this.file = file;
  }
}

interface ConfigFile {
  path: string;
  store?: string;
  blobs?: string;
}

/** A location fit for messages: a postgres URL loses its password. */
export function displayLocation(location: string): string {
  if (!isPostgresLocation(location)) return location;
  try {
    const url = new URL(location);
    if (url.password !== '') url.password = '***';
    return url.toString();
  } catch {
    return location.replace(/\/\/([^:/@]*):[^@/]*@/, '//$1:***@');
  }
}

/** Reads `rewind.config.json` in `cwd`; undefined when there is none, ConfigError when it is malformed. */
export function readConfigFile(cwd: string): ConfigFile | undefined {
  const path = join(cwd, CONFIG_FILE_NAME);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ConfigError(path, `cannot be read (${(error as Error).message})`, { cause: error });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(path, `is not valid JSON (${(error as Error).message})`, { cause: error });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(path, 'must hold a JSON object such as {"store": ".rewind"}');
  }
  const record = value as Record<string, unknown>;
  const config: ConfigFile = { path };
  for (const key of ['store', 'blobs'] as const) {
    const setting = record[key];
    if (setting === undefined) continue;
    if (typeof setting !== 'string' || setting.trim() === '') {
      throw new ConfigError(
        path,
        `"${key}" must be a non-empty string (a directory${key === 'store' ? ' or a postgres:// URL' : ''}), got ${JSON.stringify(setting)}`,
      );
    }
    config[key] = setting;
  }
  return config;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}

function absolute(cwd: string, location: string): string {
  return isPostgresLocation(location) || isAbsolute(location) ? location : resolve(cwd, location);
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

/** The options to pass to `openStore(config.store, …)`. */
export function openStoreOptions(config: StoreConfig): OpenStoreOptions {
  return config.schema === undefined
    ? { blobs: config.blobs }
    : { blobs: config.blobs, schema: config.schema };
}

/** Resolves the store and blob locations (see the rules at the top of this file). */
export function resolveStoreConfig(input: StoreConfigInput = {}): StoreConfig {
  const env = input.env ?? process.env;
  const cwd = input.cwd ?? process.cwd();
  const read: { done: boolean; file: ConfigFile | undefined } = { done: false, file: undefined };
  const config = (): ConfigFile | undefined => {
    if (!read.done) [read.done, read.file] = [true, readConfigFile(cwd)];
    return read.file;
  };

  let store: string;
  let source: SettingSource;
  const fromFlag = nonEmpty(input.store);
  const fromEnv = nonEmpty(env.REWIND_STORE);
  if (fromFlag !== undefined) [store, source] = [fromFlag, 'flag'];
  else if (fromEnv !== undefined) [store, source] = [fromEnv, 'env'];
  else if (config()?.store !== undefined) [store, source] = [config()!.store!, 'config'];
  else [store, source] = [DEFAULT_STORE, 'default'];

  let blobs: string | undefined;
  let blobsSource: SettingSource;
  const blobsFlag = nonEmpty(input.blobs);
  const blobsEnv = nonEmpty(env.REWIND_BLOBS);
  if (blobsFlag !== undefined) [blobs, blobsSource] = [blobsFlag, 'flag'];
  else if (blobsEnv !== undefined) [blobs, blobsSource] = [blobsEnv, 'env'];
  else if (config()?.blobs !== undefined) [blobs, blobsSource] = [config()!.blobs!, 'config'];
  else [blobs, blobsSource] = [undefined, 'default'];

  const location = absolute(cwd, store);
  const postgres = isPostgresLocation(location) ? splitPostgresSchema(location) : undefined;
  const defaultBlobs = postgres === undefined ? join(location, 'blobs') : join(cwd, DEFAULT_STORE, 'blobs');
  return {
    store: postgres?.url ?? location,
    schema: postgres?.schema,
    blobs: blobs === undefined ? defaultBlobs : absolute(cwd, blobs),
    source,
    blobsSource,
    display: displayLocation(store),
    configFile: read.file?.path,
  };
}
