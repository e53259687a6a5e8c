import { readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { isPostgresLocation, type OpenStoreOptions, splitPostgresSchema } from './open.ts';
import { isS3Location } from './s3-blob-store.ts';

// Where the store lives, and (for the capture SDK) where runs are sent. The CLI and the SDK
// resolve it with these same rules, so a run recorded by the SDK is found by `rewind runs` run in
// the same directory. Each setting is taken from the first place that gives it:
//
//   store:  --store <dir|postgres://…> / the SDK's `store`  >  REWIND_STORE
//           >  rewind.config.json "store"  >  .rewind
//   blobs:  --blobs <dir|s3://bucket/prefix> / `blobs`  >  REWIND_BLOBS  >  rewind.config.json "blobs"
//           >  the default: <dir>/blobs for a directory store, .rewind/blobs for PostgreSQL
//           (openStore's defaults). An s3:// location is kept as written; the endpoint and
//           credentials come from the AWS_* variables when the store is opened (docs/storage.md).
//
// The SDK also reads (resolveCaptureConfig):
//
//   destination  `store`/`endpoint` options  >  REWIND_STORE / REWIND_ENDPOINT
//                >  rewind.config.json "store" / "endpoint"  >  the store .rewind
//                (the first level naming either decides; within one level an endpoint wins)
//   apiKey       `apiKey`  >  REWIND_API_KEY  >  rewind.config.json "apiKey"
//   spoolDir     `spoolDir`  >  REWIND_SPOOL_DIR  >  rewind.config.json "spoolDir"  >  .rewind/spool
//                (with an endpoint: where the exporter keeps what it could not deliver yet)
//   enabled      `enabled`  >  REWIND_DISABLED (1, true, yes or on disables)
//                >  rewind.config.json "enabled"  >  true
//
// A PostgreSQL URL may name the schema holding Rewind's tables with `?schema=<name>` (default
// `rewind`); the parameter is taken off the URL and passed to openStore as its `schema` option.
// Relative directories are resolved against the working directory (the config file lives there,
// so its relative paths mean the same thing). A malformed config file is an error naming the file
// and the problem; it is only read when a setting is not given by a flag or an environment variable.

export const CONFIG_FILE_NAME = 'rewind.config.json';
export const DEFAULT_STORE = '.rewind';

/** `flag`: a CLI flag, or an option passed to the SDK in code. */
export type SettingSource = 'flag' | 'env' | 'config' | 'default';

export interface StoreConfig {
  /** An absolute directory (SQLite + filesystem blobs) or a postgres:// URL (without `schema`), as passed to `openStore`. */
  store: string;
  /** PostgreSQL only: the schema named by the URL's `?schema=`, when it names one. */
  schema: string | undefined;
  /** The absolute blob directory, or an `s3://bucket/prefix` location. */
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
  /** The `--store` flag (the SDK's `store` option). */
  store?: string | undefined;
  /** The `--blobs` flag (the SDK's `blobs` option). */
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

/** The settings a `rewind.config.json` may hold (other keys, e.g. `agents`, are left to their readers). */
export interface ConfigFile {
  path: string;
  store?: string;
  blobs?: string;
  endpoint?: string;
  apiKey?: string;
  spoolDir?: string;
  enabled?: boolean;
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

const STRING_SETTINGS: Record<'store' | 'blobs' | 'endpoint' | 'apiKey' | 'spoolDir', string> = {
  store: 'a directory or a postgres:// URL',
  blobs: 'a directory or an s3://bucket/prefix URL',
  endpoint: 'a URL',
  apiKey: 'a key',
  spoolDir: 'a directory',
};

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
  for (const [key, what] of Object.entries(STRING_SETTINGS) as Array<
    [keyof typeof STRING_SETTINGS, string]
  >) {
    const setting = record[key];
    if (setting === undefined) continue;
    if (typeof setting !== 'string' || setting.trim() === '') {
      throw new ConfigError(
        path,
        `"${key}" must be a non-empty string (${what}), got ${JSON.stringify(setting)}`,
      );
    }
    config[key] = setting;
  }
  if (record.enabled !== undefined) {
    if (typeof record.enabled !== 'boolean')
      throw new ConfigError(path, `"enabled" must be true or false, got ${JSON.stringify(record.enabled)}`);
    config.enabled = record.enabled;
  }
  return config;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}

function absolute(cwd: string, location: string): string {
  return isPostgresLocation(location) || isS3Location(location) || isAbsolute(location)
    ? location
    : resolve(cwd, location);
}

/** The options to pass to `openStore(config.store, …)`. */
export function openStoreOptions(config: StoreConfig): OpenStoreOptions {
  return config.schema === undefined
    ? { blobs: config.blobs }
    : { blobs: config.blobs, schema: config.schema };
}

/** Reads the config file at most once, and only when asked. */
function lazyConfig(cwd: string): { get(): ConfigFile | undefined; file(): ConfigFile | undefined } {
  let done = false;
  let file: ConfigFile | undefined;
  return {
    get() {
      if (!done) {
        done = true;
        file = readConfigFile(cwd);
      }
      return file;
    },
    file: () => file,
  };
}

function resolveWith(
  input: StoreConfigInput,
  config: ReturnType<typeof lazyConfig>,
  chosen?: { store: string; source: SettingSource },
): StoreConfig {
  const env = input.env ?? process.env;
  const cwd = input.cwd ?? process.cwd();
  let store: string;
  let source: SettingSource;
  const fromFlag = nonEmpty(input.store);
  const fromEnv = nonEmpty(env.REWIND_STORE);
  if (chosen !== undefined) [store, source] = [chosen.store, chosen.source];
  else if (fromFlag !== undefined) [store, source] = [fromFlag, 'flag'];
  else if (fromEnv !== undefined) [store, source] = [fromEnv, 'env'];
  else if (config.get()?.store !== undefined) [store, source] = [config.get()!.store!, 'config'];
  else [store, source] = [DEFAULT_STORE, 'default'];

  let blobs: string | undefined;
  let blobsSource: SettingSource;
  const blobsFlag = nonEmpty(input.blobs);
  const blobsEnv = nonEmpty(env.REWIND_BLOBS);
  if (blobsFlag !== undefined) [blobs, blobsSource] = [blobsFlag, 'flag'];
  else if (blobsEnv !== undefined) [blobs, blobsSource] = [blobsEnv, 'env'];
  else if (config.get()?.blobs !== undefined) [blobs, blobsSource] = [config.get()!.blobs!, 'config'];
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
    configFile: config.file()?.path,
  };
}

/** Resolves the store and blob locations (see the rules at the top of this file). */
export function resolveStoreConfig(input: StoreConfigInput = {}): StoreConfig {
  return resolveWith(input, lazyConfig(input.cwd ?? process.cwd()));
}

export interface CaptureConfigInput extends StoreConfigInput {
  endpoint?: string | undefined;
  apiKey?: string | undefined;
  spoolDir?: string | undefined;
  enabled?: boolean | undefined;
}

export type CaptureDestination =
  | { kind: 'store'; config: StoreConfig }
  | {
      kind: 'endpoint';
      endpoint: string;
      apiKey: string | undefined;
      source: SettingSource;
      /** The absolute spool directory. */
      spoolDir: string;
    };

export interface CaptureConfig {
  enabled: boolean;
  destination: CaptureDestination;
  /** The config file that was read, when one was. */
  configFile: string | undefined;
}

function isDisabledFlag(value: string | undefined): boolean {
  return value !== undefined && /^(1|true|yes|on)$/i.test(value.trim());
}

/** Where the capture SDK records (see the rules at the top of this file). Throws ConfigError for a malformed config file. */
export function resolveCaptureConfig(input: CaptureConfigInput = {}): CaptureConfig {
  const env = input.env ?? process.env;
  const config = lazyConfig(input.cwd ?? process.cwd());

  let enabled: boolean;
  if (input.enabled !== undefined) enabled = input.enabled;
  else if (isDisabledFlag(env.REWIND_DISABLED)) enabled = false;
  else enabled = config.get()?.enabled ?? true;

  const levels: Array<{ source: SettingSource; get: () => { store?: string; endpoint?: string } }> = [
    { source: 'flag', get: () => ({ store: nonEmpty(input.store), endpoint: nonEmpty(input.endpoint) }) },
    {
      source: 'env',
      get: () => ({ store: nonEmpty(env.REWIND_STORE), endpoint: nonEmpty(env.REWIND_ENDPOINT) }),
    },
    { source: 'config', get: () => ({ store: config.get()?.store, endpoint: config.get()?.endpoint }) },
  ];
  let chosen: { source: SettingSource; store?: string; endpoint?: string } = {
    source: 'default',
    store: DEFAULT_STORE,
  };
  for (const level of levels) {
    const found = level.get();
    if (found.store !== undefined || found.endpoint !== undefined) {
      chosen = { source: level.source, ...found };
      break;
    }
  }

  let destination: CaptureDestination;
  if (chosen.endpoint !== undefined) {
    const cwd = input.cwd ?? process.cwd();
    const spoolDir =
      nonEmpty(input.spoolDir) ??
      nonEmpty(env.REWIND_SPOOL_DIR) ??
      config.get()?.spoolDir ??
      join(DEFAULT_STORE, 'spool');
    destination = {
      kind: 'endpoint',
      endpoint: chosen.endpoint,
      apiKey: nonEmpty(input.apiKey) ?? nonEmpty(env.REWIND_API_KEY) ?? config.get()?.apiKey,
      source: chosen.source,
      spoolDir: resolve(cwd, spoolDir),
    };
  } else {
    destination = {
      kind: 'store',
      config: resolveWith(input, config, { store: chosen.store ?? DEFAULT_STORE, source: chosen.source }),
    };
  }
  return { enabled, destination, configFile: config.file()?.path };
}
