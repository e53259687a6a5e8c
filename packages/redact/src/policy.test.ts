import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { DETECTORS } from './detectors.ts';
import { PolicyError } from './errors.ts';
import { defaultPolicy, loadPolicy, parsePolicy, policyNeedsKey } from './policy.ts';

const scratch: string[] = [];
after(() => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'rewind-policy-'));
  scratch.push(dir);
  return dir;
}

function rejects(input: unknown, field: string, message: RegExp): void {
  assert.throws(
    () => parsePolicy(input, '/x/rewind.policy.json'),
    (error: unknown) => {
      assert.ok(PolicyError.isInstance(error), String(error));
      assert.equal(error.field, field);
      assert.equal(error.code, 'invalid_policy');
      assert.match(error.message, message);
      assert.ok(error.message.startsWith(`/x/rewind.policy.json: ${field}`), error.message);
      return true;
    },
  );
}

describe('policy', () => {
  it('the default masks every secret detector and leaves PII off', () => {
    const policy = defaultPolicy();
    for (const detector of DETECTORS) {
      assert.equal(
        policy.detectors[detector.name],
        detector.category === 'secret' ? 'mask' : 'off',
        detector.name,
      );
    }
    assert.deepEqual(policy.rules, []);
    assert.equal(policyNeedsKey(policy), false);
  });

  it('group keys set a whole category; a detector entry wins over its group', () => {
    const policy = parsePolicy({ version: 1, detectors: { phone: 'off', pii: 'hash', secrets: 'seal' } });
    assert.equal(policy.detectors.email, 'hash');
    assert.equal(policy.detectors.phone, 'off');
    assert.equal(policy.detectors.openai, 'seal');
    assert.equal(policyNeedsKey(policy), true);
  });

  it('rules: path, action and a label defaulting to the last key', () => {
    const policy = parsePolicy({
      version: 1,
      rules: [
        { path: 'tool:crm.lookup.response.output.email', action: 'hash' },
        { path: 'model.request.messages[*].content', action: 'mask', label: 'prompt' },
        { path: 'run.input', action: 'drop' },
      ],
    });
    assert.deepEqual(
      policy.rules.map((rule) => [rule.path.source, rule.action, rule.label]),
      [
        ['tool:crm.lookup.response.output.email', 'hash', 'email'],
        ['model.request.messages[*].content', 'mask', 'prompt'],
        ['run.input', 'drop', 'input'],
      ],
    );
  });

  it('errors name the field that is wrong and say what to write', () => {
    rejects([], '', /must be a JSON object/);
    rejects({}, 'version', /is missing; write "version": 1/);
    rejects({ version: 2 }, 'version', /needs a newer @rewind\/redact/);
    rejects({ version: 1, detector: {} }, 'detector', /unknown key/);
    rejects(
      { version: 1, detectors: { emial: 'mask' } },
      'detectors.emial',
      /no such detector \(did you mean email/,
    );
    rejects(
      { version: 1, detectors: { email: 'encrypt' } },
      'detectors.email',
      /one of mask, hash, drop, seal, off/,
    );
    rejects({ version: 1, rules: {} }, 'rules', /must be an array/);
    rejects(
      { version: 1, rules: [{ path: 'run.input', action: 'mask' }, 'x'] },
      'rules[1]',
      /must be an object/,
    );
    rejects({ version: 1, rules: [{ path: 'tool:', action: 'mask' }] }, 'rules[0].path', /needs a step name/);
    rejects(
      { version: 1, rules: [{ path: 'steps.request', action: 'mask' }] },
      'rules[0].path',
      /must start with one of run, model/,
    );
    rejects(
      { version: 1, rules: [{ path: 'model.body', action: 'mask' }] },
      'rules[0].path',
      /one of request, response/,
    );
    rejects(
      { version: 1, rules: [{ path: 'run.input[x]', action: 'mask' }] },
      'rules[0].path',
      /must be \[\*\], an index/,
    );
    rejects({ version: 1, rules: [{ path: 'run.input', action: 'hide' }] }, 'rules[0].action', /got "hide"/);
    rejects(
      { version: 1, rules: [{ path: 'run.input', action: 'mask', label: 'A B' }] },
      'rules[0].label',
      /1–40 characters/,
    );
    rejects(
      { version: 1, rules: [{ path: 'run.input', action: 'mask', why: 1 }] },
      'rules[0].why',
      /unknown key/,
    );
    rejects({ version: 1, limits: { maxDepth: 0 } }, 'limits.maxDepth', /whole number/);
    rejects({ version: 1, limits: { depth: 3 } }, 'limits.depth', /unknown limit/);
  });

  it('loadPolicy: --policy file > rewind.policy.json > rewind.config.json "policy" > default', () => {
    const cwd = tempDir();
    assert.equal(loadPolicy({ cwd }).source, 'default');
    writeFileSync(
      join(cwd, 'rewind.config.json'),
      JSON.stringify({ store: '.rewind', policy: { version: 1, detectors: { email: 'mask' } } }),
    );
    const fromConfig = loadPolicy({ cwd });
    assert.equal(fromConfig.source, 'config');
    assert.equal(fromConfig.policy.detectors.email, 'mask');
    writeFileSync(join(cwd, 'team-policy.json'), JSON.stringify({ version: 1, detectors: { iban: 'hash' } }));
    writeFileSync(join(cwd, 'rewind.config.json'), JSON.stringify({ policy: 'team-policy.json' }));
    const referenced = loadPolicy({ cwd });
    assert.deepEqual(
      [referenced.source, referenced.file, referenced.policy.detectors.iban],
      ['config', join(cwd, 'team-policy.json'), 'hash'],
    );
    writeFileSync(
      join(cwd, 'rewind.policy.json'),
      JSON.stringify({ version: 1, detectors: { phone: 'mask' } }),
    );
    const fromFile = loadPolicy({ cwd });
    assert.equal(fromFile.source, 'policy-file');
    assert.equal(fromFile.policy.detectors.phone, 'mask');
    assert.equal(fromFile.policy.detectors.email, 'off');
    writeFileSync(join(cwd, 'other.json'), JSON.stringify({ version: 1, detectors: { iban: 'mask' } }));
    const fromFlag = loadPolicy({ cwd, file: 'other.json' });
    assert.equal(fromFlag.source, 'flag');
    assert.equal(fromFlag.file, join(cwd, 'other.json'));
    assert.equal(fromFlag.policy.detectors.iban, 'mask');
  });

  it('loadPolicy: errors in rewind.config.json name policy.<field> and the file; bad JSON and missing files are clear', () => {
    const cwd = tempDir();
    writeFileSync(
      join(cwd, 'rewind.config.json'),
      JSON.stringify({ policy: { version: 1, rules: [{ path: 'run.x', action: 'mask' }] } }),
    );
    assert.throws(
      () => loadPolicy({ cwd }),
      (error: unknown) => {
        assert.ok(PolicyError.isInstance(error));
        assert.equal(error.field, 'policy.rules[0].path');
        assert.equal(error.file, join(cwd, 'rewind.config.json'));
        return true;
      },
    );
    writeFileSync(join(cwd, 'rewind.policy.json'), '{"version": 1,');
    assert.throws(() => loadPolicy({ cwd }), /rewind\.policy\.json: is not valid JSON/);
    assert.throws(() => loadPolicy({ cwd, file: 'nope.json' }), /nope\.json: does not exist/);
  });
});
