import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { DETECTORS, detectorByName, ibanChecksumValid, luhnValid, scanText } from './detectors.ts';

const found = (text: string) =>
  scanText(text, DETECTORS).map((m) => [m.detector.name, text.slice(m.start, m.end)]);

/** Quantifiers outside character classes that are unbounded: +, *, {n,}. Lazy/possessive marks follow them. */
function unboundedQuantifiers(source: string): string[] {
  const out: string[] = [];
  let inClass = false;
  for (let i = 0; i < source.length; i++) {
    const char = source[i]!;
    if (char === '\\') {
      i++;
      continue;
    }
    if (inClass) {
      if (char === ']') inClass = false;
      continue;
    }
    if (char === '[') inClass = true;
    else if (char === '+' || char === '*') out.push(`${char} at ${i}`);
    else if (char === '{') {
      const close = source.indexOf('}', i);
      const body = source.slice(i + 1, close);
      if (/^\d+,$/.test(body)) out.push(`{${body}} at ${i}`);
    }
  }
  return out;
}

describe('detectors', () => {
  it('every pattern has only bounded quantifiers and starts anchored (the linear-time rules)', () => {
    for (const detector of DETECTORS) {
      for (const { regex } of detector.patterns) {
        assert.deepEqual(unboundedQuantifiers(regex.source), [], `${detector.name}: ${regex.source}`);
        assert.ok(regex.flags.includes('g') && regex.flags.includes('d'), detector.name);
      }
    }
    // The checker itself catches what it must.
    assert.deepEqual(unboundedQuantifiers('a+[+*]b*c{2,}d{1,3}\\+'), ['+ at 1', '* at 7', '{2,} at 9']);
  });

  it('validators: Luhn, IBAN mod-97, SSN ranges, JWT header, IP ranges', () => {
    assert.ok(luhnValid('4111111111111111'));
    assert.ok(!luhnValid('4111111111111112'));
    assert.ok(ibanChecksumValid('DE89370400440532013000'));
    assert.ok(!ibanChecksumValid('DE89370400440532013001'));
    assert.deepEqual(found('ssn 078-05-1120'), [['us_ssn', '078-05-1120']]);
    for (const bad of ['000-12-3456', '666-12-3456', '912-34-5678', '123-00-4567', '123-45-0000']) {
      assert.deepEqual(found(`ssn ${bad}`), [], bad);
    }
    assert.deepEqual(found('a.eyJhbGciOiJub25lIn0x.eyJzdWIiOiIxIn0.sig'), []);
    assert.deepEqual(
      found('eyJub3RhbGciOjF9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl'),
      [],
      'a header without alg is not a JWT',
    );
    assert.deepEqual(found('10.0.0.1 and 300.1.1.1 and 01.2.3.4'), [['ip_address', '10.0.0.1']]);
    assert.deepEqual(found('at 12:30:45, mac 00:1A:2B:3C:4D:5E'), []);
  });

  it('finds a card after a rejected number that runs into it', () => {
    assert.deepEqual(found('order 12 4111 1111 1111 1111'), [['credit_card', '4111 1111 1111 1111']]);
  });

  it('overlaps: the more specific detector names the span, and the span covers both', () => {
    const jwt =
      'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U';
    assert.deepEqual(found(`Authorization: Bearer ${jwt}`), [['jwt', jwt]]);
  });

  it('references to secrets are not secrets (environment variables, placeholders)', () => {
    assert.deepEqual(found('const apiKey = process.env.OPENAI_API_KEY;'), []);
    assert.deepEqual(found('api_key: YOUR_API_KEY, password: ********'), []);
    assert.deepEqual(found('DB_PASSWORD=Xk9#mP2qLw8zR4'), [['high_entropy', 'Xk9#mP2qLw8zR4']]);
  });

  it('a 1 MB adversarial input of each kind is scanned with work linear in its size', async () => {
    const size = 1 << 20;
    const recipes = [
      { name: 'letters', head: '', unit: 'a', tail: '' },
      { name: 'openai prefixes', head: '', unit: 'sk-', tail: '' },
      { name: 'jwt prefixes', head: '', unit: 'eyJ', tail: '' },
      { name: 'jwt without end', head: '', unit: 'eyJab.', tail: '' },
      { name: 'spaced digits', head: '', unit: '1 ', tail: '' },
      { name: 'dashed digits', head: '', unit: '4-', tail: '' },
      { name: 'at signs', head: '', unit: 'a@', tail: '' },
      { name: 'dotted local part', head: '', unit: 'a.', tail: '' },
      { name: 'long local part', head: '', unit: `${'a'.repeat(63)}@`, tail: '' },
      { name: 'domain labels', head: 'x@', unit: 'a-', tail: '' },
      { name: 'pem headers', head: '', unit: '-----BEGIN RSA PRIVATE KEY-----', tail: '' },
      { name: 'pem without end', head: '-----BEGIN PRIVATE KEY-----\n', unit: 'QUJD\n', tail: '' },
      { name: 'key words', head: '', unit: 'password=', tail: '' },
      { name: 'key word then a long value', head: 'password=', unit: 'x1Y', tail: '' },
      { name: 'bearer', head: '', unit: 'Bearer ', tail: '' },
      { name: 'bearer then a long value', head: 'Authorization: Bearer ', unit: 'a1', tail: '' },
      { name: 'aws prefixes', head: '', unit: 'AKIA', tail: '' },
      { name: 'aws secret names', head: '', unit: 'aws_secret_access_key=', tail: '' },
      { name: 'colons', head: '', unit: ':', tail: '' },
      { name: 'hex and colons', head: '', unit: 'a1:', tail: '' },
      { name: 'dotted numbers', head: '', unit: '1.', tail: '' },
      { name: 'phone-ish', head: '', unit: '+1 (', tail: '' },
      { name: 'iban-ish', head: 'DE89', unit: ' 1234', tail: '' },
      { name: 'uppercase', head: '', unit: 'AB12', tail: '' },
      { name: 'slack webhooks', head: '', unit: 'https://hooks.slack.com/services/', tail: '' },
      { name: 'digits', head: '', unit: '4', tail: '' },
    ];
    const results: Array<{ name: string; length: number; candidates: number; candidateChars: number }> = [];
    await new Promise<void>((resolve, reject) => {
      const worker = new Worker(new URL('./testing/adversarial-worker.ts', import.meta.url), {
        workerData: { recipes, size },
      });
      // A safety net only: the assertions below are on the work done, not on time.
      const timer = setTimeout(() => {
        void worker.terminate();
        reject(new Error(`scanning did not finish: done ${results.map((r) => r.name).join(', ')}`));
      }, 300_000);
      worker.on('message', (result) => results.push(result));
      worker.on('error', reject);
      worker.on('exit', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    assert.equal(results.length, recipes.length);
    for (const result of results) {
      assert.ok(result.length >= size, result.name);
      // Each candidate a pattern produced is bounded in length, and there are at most as many as characters.
      assert.ok(result.candidates <= result.length, `${result.name}: ${result.candidates} candidates`);
      assert.ok(
        result.candidateChars <= 64 * result.length,
        `${result.name}: ${result.candidateChars} characters`,
      );
    }
  });

  it('every detector has a description and a hold-back length', () => {
    for (const detector of DETECTORS) {
      assert.ok(detector.description.length > 10 && detector.maxLength > 0, detector.name);
      assert.equal(detectorByName(detector.name), detector);
    }
  });
});
