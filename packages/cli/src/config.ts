// Where the store lives: the rules are shared with the capture SDK and live in @rewind/store
// (packages/store/src/config.ts), so that a run recorded by the SDK is found by `rewind runs`
// run in the same directory. Re-exported here for the CLI's modules and its `./config` export.
export {
  CONFIG_FILE_NAME,
  ConfigError,
  type ConfigFile,
  DEFAULT_STORE,
  displayLocation,
  openStoreOptions,
  readConfigFile,
  resolveStoreConfig,
  type SettingSource,
  type StoreConfig,
  type StoreConfigInput,
  splitPostgresSchema,
} from '@rewind/store';
