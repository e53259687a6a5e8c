// `rewind redact-check` end to end through the real binary, in a temporary working directory.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runRewind as rewind } from './rewind-cli.ts';

const scratch: string[] = [];
after(() => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'rewind-redact-check-'));
  scratch.push(dir);
  return dir;
}

const OPENAI = 'sk-proj-Abc123Def456Ghi789Jkl012Mno345Pqr678';
const EMAIL = 'jane.doe@example.com';
const TEXT = `Support chat\nuser: my key is ${OPENAI}\nuser: mail me at ${EMAIL}\n`;

describe('rewind redact-check', () => {
  it('text with the default policy: line:column, action and detector of each secret; PII left alone', async () => {
    const cwd = tempDir();
    writeFileSync(join(cwd, 'chat.txt'), TEXT);
    const result = await rewind(['redact-check', 'chat.txt'], { cwd });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /policy: the built-in default/);
    assert.match(result.stdout, /chat\.txt \(text\): 1 finding/);
    assert.match(result.stdout, /2:17\s+mask\s+detector openai/);
    assert.ok(!result.stdout.includes(OPENAI), 'the secret is never printed');

    const json = await rewind(['redact-check', 'chat.txt', '--json', '--show'], { cwd });
    assert.equal(json.code, 0);
    const report = JSON.parse(json.stdout);
    assert.deepEqual(report.policy, { source: 'default', file: null });
    assert.deepEqual(report.input, { name: 'chat.txt', kind: 'text' });
    assert.deepEqual(report.findings, [
      {
        detector: 'openai',
        action: 'mask',
        line: 2,
        column: 17,
        start: TEXT.indexOf(OPENAI),
        end: TEXT.indexOf(OPENAI) + OPENAI.length,
      },
    ]);
    assert.equal(report.output, TEXT.replace(OPENAI, '[REDACTED:openai]'));
    assert.equal(report.throwawayKey, false);
  });

  it('JSON from stdin with rewind.policy.json: paths, rules and hashing with the project key', async () => {
    const cwd = tempDir();
    writeFileSync(
      join(cwd, 'rewind.policy.json'),
      JSON.stringify({
        version: 1,
        detectors: { email: 'hash' },
        rules: [{ path: 'run.input.password', action: 'drop' }],
      }),
    );
    const input = JSON.stringify({ user: EMAIL, password: 'hunter2', notes: [`key ${OPENAI}`] });
    const key = randomBytes(32).toString('base64');
    const run = () =>
      rewind(['redact-check', '-', '--at', 'run.input', '--json'], {
        cwd,
        input,
        env: { REWIND_PROJECT_KEY: key },
      });
    const first = await run();
    assert.equal(first.code, 0, first.stderr);
    const report = JSON.parse(first.stdout);
    assert.equal(report.policy.source, 'policy-file');
    assert.deepEqual(report.input, { name: '<stdin>', kind: 'json' });
    assert.deepEqual(
      report.findings.map((f: { detector: string; action: string; path: string }) => [
        f.detector,
        f.action,
        f.path,
      ]),
      [
        ['email', 'hash', 'run.input.user'],
        ['rule', 'drop', 'run.input.password'],
        ['openai', 'mask', 'run.input.notes[0]'],
      ],
    );
    assert.match(report.output.user, /^«email:[0-9a-f]{12}»$/);
    assert.deepEqual(Object.keys(report.output), ['user', 'notes']);
    assert.equal(report.throwawayKey, false);
    assert.equal(JSON.parse((await run()).stdout).output.user, report.output.user, 'one key, one pseudonym');

    const human = await rewind(['redact-check', '-', '--at', 'run.input'], { cwd, input });
    assert.equal(human.code, 0);
    assert.match(human.stdout, /run\.input\.password\s+drop\s+rule run\.input\.password/);
    assert.match(human.stdout, /REWIND_PROJECT_KEY is not set/);
  });

  it('--policy wins; a broken policy is exit 2 naming the rule; a missing file is exit 3', async () => {
    const cwd = tempDir();
    writeFileSync(join(cwd, 'chat.txt'), TEXT);
    writeFileSync(join(cwd, 'pii.json'), JSON.stringify({ version: 1, detectors: { email: 'mask' } }));
    const withFlag = await rewind(['redact-check', 'chat.txt', '--policy', 'pii.json'], { cwd });
    assert.equal(withFlag.code, 0);
    assert.match(withFlag.stdout, /3:18\s+mask\s+detector email/);

    writeFileSync(
      join(cwd, 'rewind.policy.json'),
      JSON.stringify({ version: 1, rules: [{ path: 'run.input', action: 'hide' }] }),
    );
    const broken = await rewind(['redact-check', 'chat.txt'], { cwd });
    assert.equal(broken.code, 2);
    assert.match(
      broken.stderr,
      /rewind\.policy\.json: rules\[0\]\.action: must be one of mask, hash, drop, seal, got "hide"/,
    );

    const missing = await rewind(['redact-check', 'nope.txt', '--policy', 'pii.json'], { cwd });
    assert.equal(missing.code, 3);
    assert.match(missing.stderr, /cannot read nope\.txt/);
    assert.equal((await rewind(['redact-check'], { cwd })).code, 2);
    const help = await rewind(['redact-check', '--help'], { cwd });
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--policy <file>/);
  });
});
