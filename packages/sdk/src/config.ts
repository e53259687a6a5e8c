import { readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';

// Where the recorder writes, resolved with the same rules as the CLI (packages/cli/src/config.ts)
// so that a run recorded by the SDK is found by `rewind runs` run in the same directory. Each
// setting comes from the first place that gives it:
//
//   destination  options.store / options.endpoint  >  $REWIND_STORE / $REWIND_ENDPOINT
//                >  rewind.config.json "store" / "endpoint"  >  the store `.rewind`
//                (the first of these levels that names either decides; within one level an
//                endpoint wins over a store)
//   blobs        options.blobs  >  $REWIND_BLOBS  >  rewind.config.json "blobs"  >  <store>/blobs
//                (.rewind/blobs for a postgres:// store)
//   apiKey       options.apiKey  >  $REWIND_API_KEY  >  rewind.config.json "apiKey"
//   enabled      options.enabled  >  $REWIND_DISABLED (1/true/yes disables)  >  "enabled"  >  true
//
// A PostgreSQL URL may name its schema with `?schema=<name>` (taken off the URL). Relative paths
// are resolved against the working directory, where the config file lives.
//
// TODO(store config): when packages/store/src/index.ts has landed, these rules move to
// packages/store/src/config.ts and both the CLI and the SDK import them from @rewind/store.

export const CONFIG_FILE_NAME = 'rewind.config.json';
export const DEFAULT_STORE = '.rewind';

export type SettingSource = 'option' | 'env' | 'config' | 'default';

export type Destination =
  | {
      kind: 'store';
      /** An absolute directory or a postgres:// URL (without `schema`). */
      store: string;
      schema: string | undefined;
      /** The absolute blob directory. */
      blobs: string;
      source: SettingSource;
    }
  | { kind: 'endpoint'; endpoint: string; apiKey: string | undefined; source: SettingSource };

export interface SdkConfig {
  enabled: boolean;
  destination: Destination;
  /** The config file that was read, when one was. */
  configFile: string | undefined;
}

export interface SdkConfigInput {
  store?: string | undefined;
  blobs?: string | undefined;
  endpoint?: string | undefined;
  apiKey?: string | undefined;
  enabled?: boolean | undefined;
  env?: Record<string, string | undefined>;
  cwd?: string;
}

export class SdkConfigError extends Error {
  override readonly name = 'SdkConfigError';
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
  endpoint?: string;
  apiKey?: string;
  enabled?: boolean;
}

const POSTGRES_URL = /^postgres(?:ql)?:\/\//i;

function isPostgres(location: string): boolean {
  return POSTGRES_URL.test(location);
}

/** Reads `rewind.config.json` in `cwd`; undefined when there is none; SdkConfigError when malformed. */
export function readSdkConfigFile(cwd: string): ConfigFile | undefined {
  const path = join(cwd, CONFIG_FILE_NAME);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new SdkConfigError(path, `cannot be read (${(error as Error).message})`, { cause: error });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new SdkConfigError(path, `is not valid JSON (${(error as Error).message})`, { cause: error });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new SdkConfigError(path, 'must hold a JSON object such as {"store": ".rewind"}');
  const record = value as Record<string, unknown>;
  const config: ConfigFile = { path };
  for (const key of ['store', 'blobs', 'endpoint', 'apiKey'] as const) {
    const setting = record[key];
    if (setting === undefined) continue;
    if (typeof setting !== 'string' || setting.trim() === '')
      throw new SdkConfigError(path, `"${key}" must be a non-empty string, got ${JSON.stringify(setting)}`);
    config[key] = setting;
  }
  if (record.enabled !== undefined) {
    if (typeof record.enabled !== 'boolean')
      throw new SdkConfigError(
        path,
        `"enabled" must be true or false, got ${JSON.stringify(record.enabled)}`,
      );
    config.enabled = record.enabled;
  }
  return config;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}

function absolute(cwd: string, location: string): string {
  return isPostgres(location) || isAbsolute(location) ? location : resolve(cwd, location);
}

function splitSchema(url: string): { url: string; schema: string | undefined } {
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

function isDisabledFlag(value: string | undefined): boolean {
  return value !== undefined && /^(1|true|yes|on)$/i.test(value.trim());
}

/** Resolves the recorder's settings (rules at the top of this file). Throws SdkConfigError for a malformed config file. */
export function resolveSdkConfig(input: SdkConfigInput = {}): SdkConfig {
  const env = input.env ?? process.env;
  const cwd = input.cwd ?? process.cwd();
  let file: ConfigFile | undefined;
  let fileRead = false;
  const config = (): ConfigFile | undefined => {
    if (!fileRead) {
      fileRead = true;
      file = readSdkConfigFile(cwd);
    }
    return file;
  };

  let enabled: boolean;
  if (input.enabled !== undefined) enabled = input.enabled;
  else if (isDisabledFlag(env.REWIND_DISABLED)) enabled = false;
  else enabled = config()?.enabled ?? true;

  const levels: Array<{ source: SettingSource; get: () => { store?: string; endpoint?: string } }> = [
    { source: 'option', get: () => ({ store: nonEmpty(input.store), endpoint: nonEmpty(input.endpoint) }) },
    {
      source: 'env',
      get: () => ({ store: nonEmpty(env.REWIND_STORE), endpoint: nonEmpty(env.REWIND_ENDPOINT) }),
    },
    { source: 'config', get: () => ({ store: config()?.store, endpoint: config()?.endpoint }) },
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

  let destination: Destination;
  if (chosen.endpoint !== undefined) {
    destination = {
      kind: 'endpoint',
      endpoint: chosen.endpoint,
      apiKey: nonEmpty(input.apiKey) ?? nonEmpty(env.REWIND_API_KEY) ?? config()?.apiKey,
      source: chosen.source,
    };
  } else {
    const location = absolute(cwd, chosen.store ?? DEFAULT_STORE);
    const postgres = isPostgres(location) ? splitSchema(location) : undefined;
    const blobsSetting = nonEmpty(input.blobs) ?? nonEmpty(env.REWIND_BLOBS) ?? config()?.blobs;
    const defaultBlobs = postgres === undefined ? join(location, 'blobs') : join(cwd, DEFAULT_STORE, 'blobs');
    destination = {
      kind: 'store',
      store: postgres?.url ?? location,
      schema: postgres?.schema,
      blobs: blobsSetting === undefined ? defaultBlobs : absolute(cwd, blobsSetting),
      source: chosen.source,
    };
  }
  return { enabled, destination, configFile: file?.path };
}
