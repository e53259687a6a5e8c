import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { detectorByName } from './detectors.ts';
import { RedactionKeyError } from './errors.ts';
import { parsePolicy } from './policy.ts';
import { createRedactor, unseal } from './redactor.ts';

const KEY = randomBytes(32).toString('base64');
const OTHER_KEY = randomBytes(32).toString('base64');
const OPENAI = 'sk-proj-Abc123Def456Ghi789Jkl012Mno345Pqr678';
const EMAIL = 'jane.doe@example.com';

const policy = (detectors: Record<string, string>, rules: unknown[] = []) =>
  parsePolicy({ version: 1, detectors, rules });

/** Asserts no finding and no output holds the secret. */
function noLeak(value: unknown, ...secrets: string[]): void {
  const text = JSON.stringify(value);
  for (const secret of secrets) assert.ok(!text.includes(secret), `leaked ${secret} in ${text}`);
}

describe('redactor', () => {
  it('default policy: secrets masked, PII untouched; findings say where without the secret', () => {
    const redactor = createRedactor(undefined, { env: {} });
    const result = redactor.redactValue(
      { messages: [{ role: 'user', content: `my key is ${OPENAI}, mail ${EMAIL}` }] },
      'model:openai.chat.request',
    );
    assert.deepEqual(result.value, {
      messages: [{ role: 'user', content: `my key is [REDACTED:openai], mail ${EMAIL}` }],
    });
    assert.deepEqual(result.findings, [
      {
        detector: 'openai',
        action: 'mask',
        path: 'model:openai.chat.request.messages[0].content',
        start: 10,
        end: 10 + OPENAI.length,
      },
    ]);
    noLeak(result.findings, OPENAI);
  });

  it('hash: equal values give equal pseudonyms across redactors with one key, other pseudonyms with another key', () => {
    const p = policy({ email: 'hash' });
    const a = createRedactor(p, { key: KEY }).redactText(`from ${EMAIL}`).value;
    const b = createRedactor(p, { key: KEY }).redactText(`to ${EMAIL}!`).value;
    const c = createRedactor(p, { key: OTHER_KEY }).redactText(`from ${EMAIL}`).value;
    const pseudonym = /«email:[0-9a-f]{12}»/.exec(a)?.[0];
    assert.ok(pseudonym !== undefined, a);
    assert.equal(b, `to ${pseudonym}!`);
    assert.notEqual(c, a);
    assert.match(c, /^from «email:[0-9a-f]{12}»$/);
    assert.notEqual(createRedactor(p, { key: KEY }).redactText('from john@example.com').value, a);
  });

  it('seal: round trip with the key (strings, spans and whole JSON values); without it the value stays sealed', () => {
    const p = policy({ email: 'seal' }, [
      { path: 'tool:crm.lookup.response.output.customer', action: 'seal' },
    ]);
    const redactor = createRedactor(p, { key: KEY });
    const original = {
      output: { customer: { name: 'Jane', vip: true, since: 2019 }, note: `write to ${EMAIL} today` },
    };
    const sealed = redactor.redactValue(original, 'tool:crm.lookup.response');
    noLeak(sealed, EMAIL, 'Jane');
    const output = (sealed.value as { output: { customer: string; note: string } }).output;
    assert.match(output.customer, /^«sealed:v1:customer:[0-9a-f]{8}:[A-Za-z0-9_-]+»$/);
    assert.match(output.note, /^write to «sealed:v1:email:[0-9a-f]{8}:[A-Za-z0-9_-]+» today$/);
    assert.deepEqual(redactor.unseal(sealed.value), original);
    assert.deepEqual(
      createRedactor(p, { key: KEY }).unseal(sealed.value),
      original,
      'another instance with the key',
    );
    assert.deepEqual(unseal(sealed.value, { key: KEY }), original);
    // Another key, or no key: it stays sealed.
    assert.deepEqual(createRedactor(p, { key: OTHER_KEY }).unseal(sealed.value), sealed.value);
    assert.deepEqual(createRedactor(undefined, { env: {} }).unseal(sealed.value), sealed.value);
    assert.throws(() => unseal(sealed.value, { env: {} }), RedactionKeyError);
    // Two seals of one value differ (random nonce).
    assert.notEqual(redactor.redactText(EMAIL).value, redactor.redactText(EMAIL).value);
    // A tampered token stays sealed.
    const tampered = output.note.replace(
      /:([A-Za-z0-9_-])([A-Za-z0-9_-]+)»/,
      (_, first: string, rest: string) => `:${first === 'A' ? 'B' : 'A'}${rest}»`,
    );
    assert.equal(redactor.unseal(tampered), tampered);
  });

  it('the key: from REWIND_PROJECT_KEY; a clear error when an action needs it and it is absent or malformed', () => {
    const p = policy({ email: 'hash' });
    assert.equal(createRedactor(p, { env: { REWIND_PROJECT_KEY: KEY } }).hasKey, true);
    assert.throws(
      () => createRedactor(p, { env: {} }),
      (error: unknown) =>
        RedactionKeyError.isInstance(error) &&
        /detectors\.email: hash.*REWIND_PROJECT_KEY.*openssl rand -base64 32/.test((error as Error).message),
    );
    assert.throws(
      () => createRedactor(p, { env: { REWIND_PROJECT_KEY: 'short' } }),
      /REWIND_PROJECT_KEY must be 32 random bytes in base64/,
    );
    assert.throws(() => createRedactor(p, { key: new Uint8Array(16) }), /must be 32 bytes, got 16/);
    assert.equal(createRedactor(undefined, { env: {} }).hasKey, false, 'the default policy needs no key');
  });

  it('drop: a rule removes an object property, an array element becomes a marker; a detector drops the whole string', () => {
    const p = policy({ phone: 'drop' }, [
      { path: 'run.input.password', action: 'drop' },
      { path: 'run.input.tags[1]', action: 'drop', label: 'tag' },
    ]);
    const result = createRedactor(p, { env: {} }).redactValue(
      {
        user: 'jane',
        password: 'hunter2',
        tags: ['a', 'secret-tag'],
        note: 'call me at (415) 555-2671 tonight',
      },
      'run.input',
    );
    assert.deepEqual(result.value, { user: 'jane', tags: ['a', '[DROPPED:tag]'], note: '[DROPPED:phone]' });
    assert.deepEqual(
      result.findings.map((f) => [f.detector, f.action, f.path]),
      [
        ['rule', 'drop', 'run.input.password'],
        ['rule', 'drop', 'run.input.tags[1]'],
        ['phone', 'drop', 'run.input.note'],
      ],
    );
  });

  it('rules: wildcards, tool names with dots, first matching rule wins, mask labels', () => {
    const p = policy({}, [
      { path: 'model.request.messages[*].content', action: 'mask', label: 'prompt' },
      { path: 'tool:crm.*.response.**.email', action: 'mask' },
      { path: 'tool:crm.lookup.response.output', action: 'drop' },
    ]);
    const redactor = createRedactor(p, { env: {} });
    assert.deepEqual(
      redactor.redactValue(
        {
          messages: [
            { role: 'user', content: 'hi' },
            { role: 'assistant', content: 'yo' },
          ],
        },
        'model:gpt.request',
      ).value,
      {
        messages: [
          { role: 'user', content: '[REDACTED:prompt]' },
          { role: 'assistant', content: '[REDACTED:prompt]' },
        ],
      },
    );
    assert.deepEqual(
      redactor.redactValue({ output: { contacts: [{ email: 'x' }] } }, 'tool:crm.search.response').value,
      { output: { contacts: [{ email: '[REDACTED:email]' }] } },
    );
    assert.deepEqual(redactor.redactValue({ output: { a: 1 } }, 'tool:crm.lookup.response').value, {});
    assert.deepEqual(redactor.redactValue({ output: { a: 1 } }, 'tool:billing.lookup.response').value, {
      output: { a: 1 },
    });
    assert.deepEqual(
      redactor.redactValue({ content: 'hi' }, '').value,
      { content: 'hi' },
      'rules need a location',
    );
  });

  it('object keys are scanned; findings paths show the key redacted', () => {
    const redactor = createRedactor(policy({ email: 'mask' }), { env: {} });
    const result = redactor.redactValue(
      { [EMAIL]: { note: `cc ${EMAIL}` }, 'bob@example.org': 2 },
      'run.output',
    );
    assert.deepEqual(result.value, {
      '[REDACTED:email]': { note: 'cc [REDACTED:email]' },
      '[REDACTED:email]#2': 2,
    });
    noLeak(result.findings, EMAIL, 'bob@example.org');
    assert.equal(result.findings[1]?.path, 'run.output["[REDACTED:email]"].note');
  });

  it('a random-looking string under a key named like a secret is a high_entropy finding', () => {
    const redactor = createRedactor(undefined, { env: {} });
    const result = redactor.redactValue({
      api_key: 'Xk9#mP2qLw8zR4vT',
      DB_PASSWORD: 'c0rrect-H0rse-battery',
      clientSecret: 'a8F3kQ9zL1mN7pR2',
      config: {
        password: 'hunter',
        max_tokens: '4096',
        token_type: 'Bearer',
        apiKey: 'process.env.OPENAI_API_KEY',
      },
    });
    assert.deepEqual(result.value, {
      api_key: '[REDACTED:high_entropy]',
      DB_PASSWORD: '[REDACTED:high_entropy]',
      clientSecret: '[REDACTED:high_entropy]',
      config: {
        password: 'hunter',
        max_tokens: '4096',
        token_type: 'Bearer',
        apiKey: 'process.env.OPENAI_API_KEY',
      },
    });
  });

  it('numbers are scanned too (a card number sent as a JSON number)', () => {
    const redactor = createRedactor(policy({ credit_card: 'mask' }), { env: {} });
    assert.deepEqual(redactor.redactValue({ card: 4111111111111111, qty: 3 }).value, {
      card: '[REDACTED:credit_card]',
      qty: 3,
    });
  });

  it('fractions are not scanned: a score or a random number is not a card number', () => {
    const redactor = createRedactor(parsePolicy({ version: 1, detectors: { pii: 'mask' } }), { env: {} });
    // 4532015112830366 is a valid Visa number; as the digits of a fraction it is a measurement
    const value = { score: 0.4532015112830366, random: [0.4532015112830366], card: 4532015112830366 };
    assert.deepEqual(redactor.redactValue(value).value, {
      score: 0.4532015112830366,
      random: [0.4532015112830366],
      card: '[REDACTED:credit_card]',
    });
  });

  it('fails closed: too deep, too large, a detector that throws, a rule that cannot apply', () => {
    const p = parsePolicy({ version: 1, limits: { maxDepth: 3, maxStringLength: 100, maxTotalLength: 150 } });
    const redactor = createRedactor(p, { env: {} });
    const deep = redactor.redactValue({ a: { b: { c: { d: OPENAI } } } });
    // maxDepth 3: the root is depth 0, so the value of d (depth 4) is not scanned.
    assert.deepEqual(deep.value, { a: { b: { c: { d: '[REDACTED:scan_failed:too_deep]' } } } });
    assert.deepEqual(deep.findings, [
      { detector: 'scan_failed', action: 'mask', path: 'a.b.c.d', reason: 'too_deep' },
    ]);
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    assert.match(JSON.stringify(redactor.redactValue(circular).value), /too_deep/);
    assert.deepEqual(redactor.redactValue({ big: `${OPENAI} ${'x'.repeat(100)}` }).value, {
      big: '[REDACTED:scan_failed:too_large]',
    });
    assert.deepEqual(redactor.redactValue(['a'.repeat(90), 'b'.repeat(90), OPENAI]).value, [
      'a'.repeat(90),
      '[REDACTED:scan_failed:too_large]',
      '[REDACTED:scan_failed:too_large]',
    ]);

    const email = detectorByName('email')!;
    const validate = email.validate;
    email.validate = () => {
      throw new Error('boom');
    };
    try {
      const broken = createRedactor(policy({ email: 'mask' }), { env: {} }).redactValue({
        text: `hi ${EMAIL}`,
        n: 1,
      });
      assert.deepEqual(broken.value, { text: '[REDACTED:scan_failed:detector_error]', n: 1 });
      const stream = createRedactor(policy({ email: 'mask' }), { env: {} }).createStream();
      const out =
        stream.push(`${'hello '.repeat(20)} ${EMAIL} and more text after it ${'x '.repeat(50)}`) +
        stream.end();
      assert.ok(!out.includes(EMAIL) && !out.includes('hello'), out);
      assert.match(out, /scan_failed:detector_error/);
    } finally {
      email.validate = validate;
    }

    const unreadable = {
      ok: 'fine',
      get secret(): string {
        throw new Error('getter fails');
      },
    };
    const hostile = {
      toJSON: () => {
        throw new Error('toJSON fails');
      },
    };
    assert.deepEqual(
      createRedactor(undefined, { env: {} }).redactValue({ a: unreadable, b: hostile, c: 'ok' }).value,
      {
        a: '[REDACTED:scan_failed:unreadable]',
        b: '[REDACTED:scan_failed:unreadable]',
        c: 'ok',
      },
    );

    const sealing = createRedactor(policy({}, [{ path: 'run.input', action: 'seal' }]), { key: KEY });
    assert.deepEqual(sealing.redactValue({ n: 1n }, 'run.input').value, '[REDACTED:scan_failed:rule_error]');
  });

  it('streams: a secret split across many chunks is caught; findings count offsets in the whole stream', () => {
    const redactor = createRedactor(policy({ email: 'mask' }), { env: {} });
    const text = `Sure! Your key is ${OPENAI} and your mail is ${EMAIL}. ${'More words follow here. '.repeat(10)}`;
    for (const size of [1, 2, 3, 7, 16, 64]) {
      const stream = redactor.createStream('model:openai.chat.response');
      let out = '';
      for (let i = 0; i < text.length; i += size) {
        const piece = stream.push(text.slice(i, i + size));
        noLeak(piece, OPENAI.slice(0, 12));
        out += piece;
      }
      out += stream.end();
      assert.equal(
        out,
        text.replace(OPENAI, '[REDACTED:openai]').replace(EMAIL, '[REDACTED:email]'),
        `chunks of ${size}`,
      );
      assert.deepEqual(
        stream.findings.map((f) => [f.detector, f.start, f.end, f.path]),
        [
          [
            'openai',
            text.indexOf(OPENAI),
            text.indexOf(OPENAI) + OPENAI.length,
            'model:openai.chat.response',
          ],
          ['email', text.indexOf(EMAIL), text.indexOf(EMAIL) + EMAIL.length, 'model:openai.chat.response'],
        ],
      );
    }
  });

  it('streams: a long run without spaces in tiny chunks costs linear work and is held back only so far', () => {
    const redactor = createRedactor(undefined, { env: {}, maxStreamHoldback: 4096 });
    const stream = redactor.createStream();
    const run = 'QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo'.repeat(8000); // ~280 KB of base64, no spaces
    let out = '';
    let maxHeld = 0;
    for (let i = 0; i < run.length; i += 4) {
      out += stream.push(run.slice(i, i + 4));
      maxHeld = Math.max(maxHeld, Math.min(i + 4, run.length) - out.length);
    }
    out += stream.end();
    assert.equal(out, run);
    assert.ok(maxHeld <= 1.5 * 4096 + 64, `held back ${maxHeld}`);
    assert.ok(stream.scannedChars <= 8 * run.length, `scanned ${stream.scannedChars} for ${run.length}`);
  });

  it('streams apply every action: hash pseudonyms equal to redactValue, seal opens with the key, drop leaves a marker', () => {
    const redactor = createRedactor(policy({ email: 'hash', credit_card: 'seal', phone: 'drop' }), {
      key: KEY,
    });
    const text = `Mail ${EMAIL}, card 4111 1111 1111 1111, call (415) 555-2671 please. ${'Thanks again. '.repeat(8)}`;
    const stream = redactor.createStream();
    let out = '';
    for (let i = 0; i < text.length; i += 5) out += stream.push(text.slice(i, i + 5));
    out += stream.end();
    noLeak(out, EMAIL, '4111 1111', '555-2671');
    assert.ok(out.includes(redactor.redactText(EMAIL).value), 'the same pseudonym as outside a stream');
    assert.ok(out.includes('call [DROPPED:phone] please'), out);
    assert.equal(
      redactor.unseal(out),
      text.replace(EMAIL, redactor.redactText(EMAIL).value).replace('(415) 555-2671', '[DROPPED:phone]'),
    );
  });

  it('a stream at a place a rule covers emits only the rule replacement of the whole text', () => {
    const redactor = createRedactor(
      policy({}, [{ path: 'model.response.message.content', action: 'seal', label: 'answer' }]),
      {
        key: KEY,
      },
    );
    const stream = redactor.createStream('model:openai.chat.response.message.content');
    const chunks = ['The answer ', 'is 42, said ', 'the model.'];
    assert.deepEqual(
      chunks.map((chunk) => stream.push(chunk)),
      ['', '', ''],
    );
    const sealed = stream.end();
    assert.match(sealed, /^«sealed:v1:answer:/);
    assert.equal(redactor.unseal(sealed), chunks.join(''));
    assert.deepEqual(
      stream.findings.map((f) => [f.detector, f.action, f.rule]),
      [['rule', 'seal', 'model.response.message.content']],
    );
    const other = redactor.createStream('model:openai.chat.response.message.refusal');
    assert.ok(other.push('word '.repeat(40)).length > 0, 'other places stream as usual');
  });

  it('streams emit text as it becomes safe (bounded hold-back), and a PEM key split in many chunks stays hidden', () => {
    const redactor = createRedactor(undefined, { env: {} });
    const stream = redactor.createStream();
    let early = '';
    for (let i = 0; i < 50; i++) early += stream.push('some ordinary words here ');
    assert.ok(early.length > 1000, 'most of the text was emitted before the end');
    const pem = `-----BEGIN RSA PRIVATE KEY-----\n${'MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n'.repeat(20)}-----END RSA PRIVATE KEY-----`;
    let out = early;
    for (let i = 0; i < pem.length; i += 10) out += stream.push(pem.slice(i, i + 10));
    out += stream.end();
    assert.ok(!out.includes('MIIEowIBAAKCAQEA'), 'no line of the key was emitted');
    assert.ok(out.endsWith('[REDACTED:private_key]'), out.slice(-80));
  });
});
