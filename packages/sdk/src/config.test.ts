import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { resolveSdkConfig, SdkConfigError } from './config.ts';

const root = mkdtempSync(join(tmpdir(), 'rewind-sdk-config-'));
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

test('nothing configured: the store .rewind in the working directory, enabled', () => {
  const cwd = dir('empty');
  const config = resolveSdkConfig({ cwd, env: {} });
  assert.equal(config.enabled, true);
  assert.deepEqual(config.destination, {
    kind: 'store',
    store: join(cwd, '.rewind'),
    schema: undefined,
    blobs: join(cwd, '.rewind', 'blobs'),
    source: 'default',
  });
  assert.equal(config.configFile, undefined);
});

test('options > environment > rewind.config.json, level by level', () => {
  const cwd = dir('levels', { store: 'cfg-store', blobs: 'cfg-blobs', apiKey: 'cfg-key', enabled: true });
  const fromConfig = resolveSdkConfig({ cwd, env: {} });
  assert.equal(
    fromConfig.destination.kind === 'store' && fromConfig.destination.store,
    join(cwd, 'cfg-store'),
  );
  assert.equal(
    fromConfig.destination.kind === 'store' && fromConfig.destination.blobs,
    join(cwd, 'cfg-blobs'),
  );
  assert.equal(fromConfig.configFile, join(cwd, 'rewind.config.json'));
  const fromEnv = resolveSdkConfig({
    cwd,
    env: { REWIND_STORE: '/abs/env-store', REWIND_BLOBS: 'env-blobs' },
  });
  assert.deepEqual(fromEnv.destination, {
    kind: 'store',
    store: '/abs/env-store',
    schema: undefined,
    blobs: join(cwd, 'env-blobs'),
    source: 'env',
  });
  const fromOption = resolveSdkConfig({ cwd, env: { REWIND_ENDPOINT: 'https://x' }, store: 'opt' });
  assert.equal(fromOption.destination.kind, 'store');
  assert.equal(fromOption.destination.source, 'option');
});

test('an endpoint at a level wins over a store at a lower one; the api key follows its own chain', () => {
  const cwd = dir('endpoint', { store: 'cfg-store', apiKey: 'cfg-key' });
  const config = resolveSdkConfig({ cwd, env: { REWIND_ENDPOINT: 'https://rewind.example' } });
  assert.deepEqual(config.destination, {
    kind: 'endpoint',
    endpoint: 'https://rewind.example',
    apiKey: 'cfg-key',
    source: 'env',
  });
  const both = resolveSdkConfig({ cwd, env: {}, store: 'x', endpoint: 'https://y', apiKey: 'k' });
  assert.deepEqual(both.destination, {
    kind: 'endpoint',
    endpoint: 'https://y',
    apiKey: 'k',
    source: 'option',
  });
});

test('REWIND_DISABLED and "enabled"', () => {
  const cwd = dir('disabled', { enabled: false });
  assert.equal(resolveSdkConfig({ cwd, env: {} }).enabled, false);
  assert.equal(resolveSdkConfig({ cwd, env: {}, enabled: true }).enabled, true);
  const plain = dir('plain');
  for (const value of ['1', 'true', 'YES', 'on'])
    assert.equal(resolveSdkConfig({ cwd: plain, env: { REWIND_DISABLED: value } }).enabled, false);
  for (const value of ['0', '', 'false'])
    assert.equal(resolveSdkConfig({ cwd: plain, env: { REWIND_DISABLED: value } }).enabled, true);
});

test('a postgres URL keeps its schema apart and blobs default to .rewind/blobs', () => {
  const cwd = dir('pg');
  const config = resolveSdkConfig({
    cwd,
    env: { REWIND_STORE: 'postgres://u:p@db:5432/rewind?schema=tenant1' },
  });
  assert.deepEqual(config.destination, {
    kind: 'store',
    store: 'postgres://u:p@db:5432/rewind',
    schema: 'tenant1',
    blobs: join(cwd, '.rewind', 'blobs'),
    source: 'env',
  });
});

test('a malformed config file is an error naming the file and the problem', () => {
  assert.throws(
    () => resolveSdkConfig({ cwd: dir('bad-json', '{ nope'), env: {} }),
    (error: unknown) => {
      return error instanceof SdkConfigError && /rewind\.config\.json: is not valid JSON/.test(error.message);
    },
  );
  assert.throws(
    () => resolveSdkConfig({ cwd: dir('bad-type', { endpoint: 42 }), env: {} }),
    /"endpoint" must be a non-empty string/,
  );
  assert.throws(
    () => resolveSdkConfig({ cwd: dir('bad-enabled', { enabled: 'no' }), env: {} }),
    /"enabled" must be true or false/,
  );
  assert.throws(() => resolveSdkConfig({ cwd: dir('bad-array', '[]'), env: {} }), /must hold a JSON object/);
});
