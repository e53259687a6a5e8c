import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError, displayLocation, openStoreOptions, resolveStoreConfig } from './config.ts';

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function workdir(config?: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'rewind-config-'));
  dirs.push(dir);
  if (config !== undefined) writeFileSync(join(dir, 'rewind.config.json'), config);
  return dir;
}

describe('resolveStoreConfig', () => {
  it('takes the flag first, then $REWIND_STORE, then rewind.config.json, then .rewind', () => {
    const cwd = workdir(JSON.stringify({ store: 'from-config' }));
    const env = { REWIND_STORE: 'from-env' };
    assert.deepEqual(
      [
        resolveStoreConfig({ store: 'from-flag', env, cwd }),
        resolveStoreConfig({ env, cwd }),
        resolveStoreConfig({ env: {}, cwd }),
        resolveStoreConfig({ env: {}, cwd: workdir() }),
      ].map((config) => [config.source, config.display]),
      [
        ['flag', 'from-flag'],
        ['env', 'from-env'],
        ['config', 'from-config'],
        ['default', '.rewind'],
      ],
    );
  });

  it('resolves relative directories against the working directory and keeps URLs and absolute paths', () => {
    const cwd = workdir(JSON.stringify({ store: 'data/store', blobs: '/srv/blobs' }));
    const config = resolveStoreConfig({ env: {}, cwd });
    assert.equal(config.store, join(cwd, 'data/store'));
    assert.equal(config.blobs, '/srv/blobs');
    assert.equal(config.configFile, join(cwd, 'rewind.config.json'));
    const url = 'postgres://postgres@127.0.0.1:5432/test';
    assert.equal(resolveStoreConfig({ store: url, env: {}, cwd }).store, url);
  });

  it('resolves blobs on their own: --blobs, $REWIND_BLOBS, the config file, else the store default', () => {
    const cwd = workdir(JSON.stringify({ blobs: 'config-blobs' }));
    assert.equal(resolveStoreConfig({ blobs: 'b', env: { REWIND_BLOBS: 'e' }, cwd }).blobsSource, 'flag');
    assert.equal(resolveStoreConfig({ env: { REWIND_BLOBS: 'e' }, cwd }).blobs, join(cwd, 'e'));
    assert.equal(resolveStoreConfig({ env: {}, cwd }).blobs, join(cwd, 'config-blobs'));
    const bare = workdir();
    const local = resolveStoreConfig({ store: 'data', env: {}, cwd: bare });
    assert.equal(local.blobs, join(bare, 'data', 'blobs'));
    assert.equal(local.blobsSource, 'default');
    const postgres = resolveStoreConfig({ store: 'postgres://127.0.0.1/test', env: {}, cwd: bare });
    assert.equal(postgres.blobs, join(bare, '.rewind', 'blobs'));
  });

  it('takes ?schema= off a PostgreSQL URL and passes it as the schema option', () => {
    const config = resolveStoreConfig({
      store: 'postgres://rewind:pw@db:5432/app?schema=agents&sslmode=require',
      env: {},
      cwd: workdir(),
    });
    assert.equal(config.store, 'postgres://rewind:pw@db:5432/app?sslmode=require');
    assert.equal(config.schema, 'agents');
    assert.equal(config.display, 'postgres://rewind:***@db:5432/app?schema=agents&sslmode=require');
    assert.deepEqual(openStoreOptions(config), { blobs: config.blobs, schema: 'agents' });
    const plain = resolveStoreConfig({ store: 'postgres://db/app', env: {}, cwd: workdir() });
    assert.equal(plain.schema, undefined);
    assert.deepEqual(openStoreOptions(plain), { blobs: plain.blobs });
  });

  it('treats an empty flag or variable as not given', () => {
    const config = resolveStoreConfig({ store: '', env: { REWIND_STORE: ' ' }, cwd: workdir() });
    assert.equal(config.source, 'default');
  });

  it('names the file and the problem when the config file is malformed', () => {
    const cases: Array<[string, RegExp]> = [
      ['{ "store": ', /is not valid JSON/],
      ['["store"]', /must hold a JSON object/],
      ['{"store": 42}', /"store" must be a non-empty string .* got 42/],
      ['{"blobs": ""}', /"blobs" must be a non-empty string/],
    ];
    for (const [text, problem] of cases) {
      const cwd = workdir(text);
      assert.throws(
        () => resolveStoreConfig({ env: {}, cwd }),
        (error: unknown) =>
          error instanceof ConfigError &&
          error.file === join(cwd, 'rewind.config.json') &&
          error.message.startsWith(join(cwd, 'rewind.config.json')) &&
          problem.test(error.message),
      );
    }
  });

  it('does not read the config file when flags or variables give every setting', () => {
    const cwd = workdir('not json');
    const config = resolveStoreConfig({ store: 's', blobs: 'b', env: {}, cwd });
    assert.equal(config.configFile, undefined);
  });

  it('keeps other keys of the config file (the agents map of replay) out of its way', () => {
    const cwd = workdir(JSON.stringify({ store: 's', agents: { 'support-bot': './agent.ts#bot' } }));
    assert.equal(resolveStoreConfig({ env: {}, cwd }).source, 'config');
  });
});

describe('displayLocation', () => {
  it('hides a postgres password', () => {
    assert.equal(
      displayLocation('postgres://rewind:s3cret@db.example:5432/rewind'),
      'postgres://rewind:***@db.example:5432/rewind',
    );
    assert.equal(displayLocation('.rewind'), '.rewind');
  });
});
