import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError, readConfigFile, resolveCaptureConfig, resolveStoreConfig } from './config.ts';

// resolveStoreConfig's rules are tested through the CLI (packages/cli/src/config.test.ts); these
// are the capture SDK's additions: endpoint, apiKey, enabled.

const root = mkdtempSync(join(tmpdir(), 'rewind-store-config-'));
after(() => rmSync(root, { recursive: true, force: true }));

function dir(name: string, config?: unknown): string {
  const path = join(root, name);
  mkdirSync(path, { recursive: true });
  if (config !== undefined)
    writeFileSync(
      join(path, 'rewind.config.json'),
      typeof config === 'string' ? config : JSON.stringify(config),
    );
  return path;
}

describe('resolveCaptureConfig', () => {
  it('with nothing configured: the store .rewind in the working directory, enabled', () => {
    const cwd = dir('empty');
    const config = resolveCaptureConfig({ cwd, env: {} });
    assert.equal(config.enabled, true);
    assert.equal(config.destination.kind, 'store');
    assert.deepEqual(config.destination.kind === 'store' && config.destination.config, {
      ...resolveStoreConfig({ cwd, env: {} }),
    });
    assert.equal(
      config.destination.kind === 'store' && config.destination.config.store,
      join(cwd, '.rewind'),
    );
    assert.equal(config.configFile, undefined);
  });

  it('takes options, then the environment, then rewind.config.json, level by level', () => {
    const cwd = dir('levels', { store: 'cfg-store', blobs: 'cfg-blobs', apiKey: 'cfg-key', enabled: true });
    const fromConfig = resolveCaptureConfig({ cwd, env: {} });
    assert.ok(fromConfig.destination.kind === 'store');
    assert.equal(fromConfig.destination.config.store, join(cwd, 'cfg-store'));
    assert.equal(fromConfig.destination.config.blobs, join(cwd, 'cfg-blobs'));
    assert.equal(fromConfig.destination.config.source, 'config');
    assert.equal(fromConfig.configFile, join(cwd, 'rewind.config.json'));
    const fromEnv = resolveCaptureConfig({
      cwd,
      env: { REWIND_STORE: '/abs/env-store', REWIND_BLOBS: 'env-blobs' },
    });
    assert.ok(fromEnv.destination.kind === 'store');
    assert.equal(fromEnv.destination.config.store, '/abs/env-store');
    assert.equal(fromEnv.destination.config.blobs, join(cwd, 'env-blobs'));
    assert.equal(fromEnv.destination.config.source, 'env');
    const fromOption = resolveCaptureConfig({ cwd, env: { REWIND_ENDPOINT: 'https://x' }, store: 'opt' });
    assert.ok(fromOption.destination.kind === 'store');
    assert.equal(fromOption.destination.config.store, join(cwd, 'opt'));
    assert.equal(fromOption.destination.config.source, 'flag');
  });

  it('an endpoint at a level wins over a store at a lower one; the api key has its own chain', () => {
    const cwd = dir('endpoint', { store: 'cfg-store', apiKey: 'cfg-key' });
    assert.deepEqual(
      resolveCaptureConfig({ cwd, env: { REWIND_ENDPOINT: 'https://rewind.example' } }).destination,
      {
        kind: 'endpoint',
        endpoint: 'https://rewind.example',
        apiKey: 'cfg-key',
        source: 'env',
        spoolDir: join(cwd, '.rewind', 'spool'),
      },
    );
    assert.deepEqual(
      resolveCaptureConfig({ cwd, env: {}, store: 'x', endpoint: 'https://y', apiKey: 'k' }).destination,
      {
        kind: 'endpoint',
        endpoint: 'https://y',
        apiKey: 'k',
        source: 'flag',
        spoolDir: join(cwd, '.rewind', 'spool'),
      },
    );
    const fromFile = dir('endpoint-file', { endpoint: 'https://z' });
    assert.deepEqual(resolveCaptureConfig({ cwd: fromFile, env: { REWIND_API_KEY: 'e' } }).destination, {
      kind: 'endpoint',
      endpoint: 'https://z',
      apiKey: 'e',
      source: 'config',
      spoolDir: join(fromFile, '.rewind', 'spool'),
    });
  });

  it('the spool directory: option > REWIND_SPOOL_DIR > "spoolDir" > .rewind/spool, relative to cwd', () => {
    const cwd = dir('spool', { endpoint: 'https://z', spoolDir: 'cfg-spool' });
    const spoolOf = (input: Parameters<typeof resolveCaptureConfig>[0]): string | undefined => {
      const destination = resolveCaptureConfig({ cwd, ...input }).destination;
      return destination.kind === 'endpoint' ? destination.spoolDir : undefined;
    };
    assert.equal(spoolOf({ env: {} }), join(cwd, 'cfg-spool'));
    assert.equal(spoolOf({ env: { REWIND_SPOOL_DIR: 'env-spool' } }), join(cwd, 'env-spool'));
    assert.equal(spoolOf({ env: { REWIND_SPOOL_DIR: '/abs/spool' }, spoolDir: 'opt' }), join(cwd, 'opt'));
    assert.equal(spoolOf({ env: { REWIND_SPOOL_DIR: '/abs/spool' } }), '/abs/spool');
  });

  it('REWIND_DISABLED and "enabled" turn recording off; an explicit option wins', () => {
    const cwd = dir('disabled', { enabled: false });
    assert.equal(resolveCaptureConfig({ cwd, env: {} }).enabled, false);
    assert.equal(resolveCaptureConfig({ cwd, env: {}, enabled: true }).enabled, true);
    const plain = dir('plain');
    for (const value of ['1', 'true', 'YES', 'on'])
      assert.equal(resolveCaptureConfig({ cwd: plain, env: { REWIND_DISABLED: value } }).enabled, false);
    for (const value of ['0', '', 'false'])
      assert.equal(resolveCaptureConfig({ cwd: plain, env: { REWIND_DISABLED: value } }).enabled, true);
  });

  it('a postgres URL keeps its schema apart; blobs default to .rewind/blobs', () => {
    const cwd = dir('pg');
    const config = resolveCaptureConfig({
      cwd,
      env: { REWIND_STORE: 'postgres://u:p@db:5432/rewind?schema=tenant1' },
    });
    assert.ok(config.destination.kind === 'store');
    assert.equal(config.destination.config.store, 'postgres://u:p@db:5432/rewind');
    assert.equal(config.destination.config.schema, 'tenant1');
    assert.equal(config.destination.config.blobs, join(cwd, '.rewind', 'blobs'));
    assert.equal(config.destination.config.display, 'postgres://u:***@db:5432/rewind?schema=tenant1');
  });
});

describe('readConfigFile', () => {
  it('reads the capture settings and rejects malformed ones, naming the file', () => {
    assert.deepEqual(
      readConfigFile(dir('full', { endpoint: 'https://e', apiKey: 'k', enabled: false, agents: {} })),
      {
        path: join(root, 'full', 'rewind.config.json'),
        endpoint: 'https://e',
        apiKey: 'k',
        enabled: false,
      },
    );
    assert.throws(
      () => resolveCaptureConfig({ cwd: dir('bad-json', '{ nope'), env: {} }),
      (error: unknown) =>
        error instanceof ConfigError && /rewind\.config\.json: is not valid JSON/.test(error.message),
    );
    assert.throws(
      () => readConfigFile(dir('bad-type', { endpoint: 42 })),
      /"endpoint" must be a non-empty string \(a URL\)/,
    );
    assert.throws(
      () => readConfigFile(dir('bad-enabled', { enabled: 'no' })),
      /"enabled" must be true or false/,
    );
    assert.throws(() => readConfigFile(dir('bad-array', '[]')), /must hold a JSON object/);
  });
});
