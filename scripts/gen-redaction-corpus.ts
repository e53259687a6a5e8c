// Writes the labelled redaction corpus in fixtures/redaction/ (positives.jsonl, negatives.jsonl)
// from a seeded PRNG, or with --check fails when the committed files are not what this script
// generates. Positives: a secret or a piece of PII in realistic surrounding text, with its offsets
// (`start`, `end`) and the detector that must find it; every value has the right format and
// checksum. Negatives: text that looks close to a secret or PII but is neither (UUIDs, git SHAs,
// base64 images, Luhn-invalid card numbers, versions, code, hex colours, …): nothing in it may be
// reported. packages/redact/src/corpus.test.ts measures recall and false-positive rates on it.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';

const SEED = 0x5eed_2026;
const PER_DETECTOR = 130;
const NEGATIVES_PER_KIND = 100;

// mulberry32: small, fast, and the same on every machine.
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const random = prng(SEED);
const int = (min: number, max: number) => min + Math.floor(random() * (max - min + 1));
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;

const DIGITS = '0123456789';
const UPPER = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
const LOWER = 'abcdefghijklmnopqrstuvwxyz';
const ALNUM = UPPER + LOWER + DIGITS;
const BASE64 = `${ALNUM}+/`;
const BASE64URL = `${ALNUM}_-`;
const HEX = '0123456789abcdef';

function chars(alphabet: string, length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += alphabet[Math.floor(random() * alphabet.length)];
  return out;
}

/** Random characters with at least one of each of `required` alphabets, shuffled in. */
function mixed(alphabet: string, length: number, required: string[]): string {
  const out = chars(alphabet, length).split('');
  required.forEach((set, i) => {
    out[(i * 7 + int(0, length - 1)) % length] = chars(set, 1);
  });
  return out.join('');
}

function entropyOf(value: string): number {
  const counts = new Map<string, number>();
  for (const char of value) counts.set(char, (counts.get(char) ?? 0) + 1);
  let bits = 0;
  for (const count of counts.values()) bits -= (count / value.length) * Math.log2(count / value.length);
  return bits;
}

function luhnCheckDigit(body: string): number {
  let sum = 0;
  let double = true;
  for (let i = body.length - 1; i >= 0; i--) {
    let d = Number(body[i]);
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return (10 - (sum % 10)) % 10;
}

function mod97(text: string): number {
  let remainder = 0;
  for (const char of text) {
    const code = char.charCodeAt(0);
    const value = code >= 65 ? code - 55 : code - 48;
    remainder = value >= 10 ? (remainder * 100 + value) % 97 : (remainder * 10 + value) % 97;
  }
  return remainder;
}

// ---- surrounding text ---------------------------------------------------------------------

const NAMES = [
  'alice',
  'bob',
  'carol',
  'dave',
  'erin',
  'frank',
  'grace',
  'heidi',
  'ivan',
  'judy',
  'mallory',
  'oscar',
];
const SURNAMES = ['smith', 'jones', 'garcia', 'miller', 'davis', 'martin', 'lee', 'walker', 'young', 'king'];
const DOMAINS = [
  'example.com',
  'example.org',
  'mail.example.net',
  'corp.example.co.uk',
  'acme-widgets.io',
  'test.dev',
];

/** Text around a value: `{}` is where it goes. */
const CONTEXTS = [
  'Here is the value you asked for: {}',
  'log 2026-11-25 10:42:07 INFO handled request, value={} status=200',
  '{"field": "{}", "ok": true}',
  'Please update the record to use {} before Friday.',
  '  - value: {}\n  - retries: 3',
  '<td class="cell">{}</td>',
  "const value = '{}';",
  '{}',
  'Customer wrote: "my details are {}, thanks!"',
  'Tool output:\n{}\n(end of output)',
  'Summary of the ticket #4821: the user pasted {} into the chat by mistake.',
  '| row 7 | {} | pending |',
];

interface Positive {
  id: string;
  detector: string;
  text: string;
  start: number;
  end: number;
}

/** A value in a context; `before`/`after` are text that must sit right next to the value (key words). */
function place(detector: string, index: number, value: string, before = '', after = ''): Positive {
  const context = pick(CONTEXTS);
  const at = context.indexOf('{}');
  const text = context.slice(0, at) + before + value + after + context.slice(at + 2);
  const start = at + before.length;
  return {
    id: `${detector}-${String(index).padStart(4, '0')}`,
    detector,
    text,
    start,
    end: start + value.length,
  };
}

// ---- positives ----------------------------------------------------------------------------

const POSITIVES: Record<string, (i: number) => Positive> = {
  openai: (i) => {
    const kind = pick(['legacy', 'proj', 'proj', 'svcacct', 'admin']);
    const value =
      kind === 'legacy'
        ? `sk-${mixed(ALNUM, 48, [DIGITS, LOWER])}`
        : `sk-${kind}-${mixed(BASE64URL, kind === 'proj' ? 156 : 74, [DIGITS, LOWER])}`;
    return place('openai', i, value);
  },
  anthropic: (i) =>
    place(
      'anthropic',
      i,
      `sk-ant-${pick(['api03', 'api03', 'admin01'])}-${mixed(BASE64URL, 93, [DIGITS])}AA`,
    ),
  aws_access_key: (i) =>
    place(
      'aws_access_key',
      i,
      `${pick(['AKIA', 'AKIA', 'ASIA'])}${chars('ABCDEFGHIJKLMNOPQRSTUVWXYZ234567', 16)}`,
    ),
  aws_secret_key: (i) => {
    const value = mixed(BASE64, 40, [UPPER, LOWER, DIGITS]);
    const [before, after] = pick([
      ['aws_secret_access_key = ', ''],
      ['AWS_SECRET_ACCESS_KEY=', ''],
      ['"SecretAccessKey": "', '"'],
      ['aws_secret_key: ', ''],
      ["secret_access_key='", "'"],
    ] as const);
    return place('aws_secret_key', i, value, before, after);
  },
  github: (i) => {
    const value =
      random() < 0.8
        ? `${pick(['ghp', 'gho', 'ghu', 'ghs', 'ghr'])}_${chars(ALNUM, 36)}`
        : `github_pat_${chars(ALNUM, 22)}_${chars(ALNUM, 59)}`;
    return place('github', i, value);
  },
  slack: (i) => {
    const roll = random();
    const value =
      roll < 0.4
        ? `xoxb-${chars(DIGITS, 12)}-${chars(DIGITS, 13)}-${chars(ALNUM, 24)}`
        : roll < 0.6
          ? `xoxp-${chars(DIGITS, 12)}-${chars(DIGITS, 12)}-${chars(DIGITS, 13)}-${chars(HEX, 32)}`
          : roll < 0.75
            ? `xapp-1-A${chars(UPPER + DIGITS, 10)}-${chars(DIGITS, 13)}-${chars(HEX, 64)}`
            : `https://hooks.slack.com/services/T${chars(UPPER + DIGITS, 8)}/B${chars(UPPER + DIGITS, 10)}/${mixed(ALNUM, 24, [DIGITS, LOWER])}`;
    return place('slack', i, value);
  },
  stripe: (i) => {
    const prefix = pick(['sk_live', 'sk_live', 'rk_live', 'sk_test', 'whsec']);
    return place('stripe', i, `${prefix}_${chars(ALNUM, prefix === 'whsec' ? 32 : int(24, 99))}`);
  },
  google_api_key: (i) => place('google_api_key', i, `AIza${chars(BASE64URL, 35)}`),
  jwt: (i) => {
    const header = Buffer.from(
      JSON.stringify({ alg: pick(['HS256', 'RS256', 'ES256']), typ: 'JWT' }),
    ).toString('base64url');
    const payload = Buffer.from(
      JSON.stringify({
        sub: chars(DIGITS, 8),
        name: `${pick(NAMES)} ${pick(SURNAMES)}`,
        iat: 1700000000 + int(0, 9e7),
      }),
    ).toString('base64url');
    return place('jwt', i, `${header}.${payload}.${chars(BASE64URL, pick([43, 86, 342]))}`);
  },
  private_key: (i) => {
    const type = pick(['RSA ', 'EC ', 'OPENSSH ', '', 'ENCRYPTED ']);
    const lines = type === 'RSA ' && random() < 0.3 ? 25 : int(3, 6);
    const body = Array.from({ length: lines }, () => chars(BASE64, 64)).join('\n');
    const value = `-----BEGIN ${type}PRIVATE KEY-----\n${body}\n${chars(BASE64, int(4, 60))}==\n-----END ${type}PRIVATE KEY-----`;
    return place('private_key', i, value);
  },
  bearer: (i) => {
    const token = mixed(`${ALNUM}._-`, int(24, 64), [DIGITS, LOWER]).replace(/^[._-]/, 'a');
    const before = pick([
      'Authorization: Bearer ',
      'authorization: bearer ',
      '"Authorization": "Bearer ',
      "-H 'Authorization: Bearer ",
      'Bearer ',
    ]);
    return place(
      'bearer',
      i,
      token,
      before,
      before.endsWith('"Bearer ') ? '"' : before.startsWith('-H') ? "'" : '',
    );
  },
  high_entropy: (i) => {
    let value: string;
    do value = mixed(`${ALNUM}!@#$%^&*_+=-`, int(12, 32), [UPPER, LOWER, DIGITS]);
    while (entropyOf(value) < 3.2 || /^[$%]/.test(value));
    const key = pick([
      'password',
      'DB_PASSWORD',
      'client_secret',
      'api_key',
      'apiKey',
      'REFRESH_TOKEN',
      'auth_token',
      'private_key',
      'passphrase',
      'x-api-key',
    ]);
    const [open, sep, close] = pick([
      ['', '=', ''],
      ['', ': ', ''],
      ['"', '": "', '"'],
      ['', ' = "', '"'],
      ['', "='", "'"],
    ] as const);
    return place('high_entropy', i, value, `${open}${key}${sep}`, close);
  },
  email: (i) => {
    const local = pick([
      () => `${pick(NAMES)}.${pick(SURNAMES)}`,
      () => `${pick(NAMES)}${int(1, 999)}`,
      () => `${pick(NAMES)}_${pick(SURNAMES)}+${pick(['news', 'work', 'test'])}`,
      () => `${pick(NAMES)[0]}${pick(SURNAMES)}`,
    ])();
    const domain =
      random() < 0.7
        ? pick(DOMAINS)
        : `${chars(LOWER, int(4, 10))}.${pick(['com', 'net', 'org', 'de', 'fr', 'io', 'co.jp'])}`;
    return place('email', i, random() < 0.15 ? `${local}@${domain}`.toUpperCase() : `${local}@${domain}`);
  },
  credit_card: (i) => {
    const [prefix, length] = pick([
      ['4', 16],
      ['4', 16],
      ['51', 16],
      ['55', 16],
      ['2221', 16],
      ['34', 15],
      ['37', 15],
      ['6011', 16],
      ['65', 16],
      ['3528', 16],
      ['4', 19],
    ] as const);
    const body = prefix + chars(DIGITS, length - prefix.length - 1);
    const digits = body + luhnCheckDigit(body);
    const separator = pick(['', ' ', '-']);
    const groups = length === 15 ? [4, 6, 5] : length === 19 ? [4, 4, 4, 4, 3] : [4, 4, 4, 4];
    let value = '';
    let at = 0;
    for (const size of groups) {
      value += (at === 0 ? '' : separator) + digits.slice(at, at + size);
      at += size;
    }
    return place('credit_card', i, value);
  },
  iban: (i) => {
    const [country, bban] = pick([
      ['DE', () => chars(DIGITS, 18)],
      ['GB', () => `${pick(['WEST', 'NWBK', 'BARC', 'MIDL'])}${chars(DIGITS, 14)}`],
      ['FR', () => `${chars(DIGITS, 10)}${chars(UPPER + DIGITS, 11)}${chars(DIGITS, 2)}`],
      ['NL', () => `${pick(['ABNA', 'INGB', 'RABO'])}${chars(DIGITS, 10)}`],
      ['ES', () => chars(DIGITS, 20)],
      ['IT', () => `${chars(UPPER, 1)}${chars(DIGITS, 10)}${chars(UPPER + DIGITS, 12)}`],
      ['CH', () => chars(DIGITS, 17)],
      ['BE', () => chars(DIGITS, 12)],
      ['NO', () => chars(DIGITS, 11)],
      ['PL', () => chars(DIGITS, 24)],
    ] as const);
    const b = bban();
    const check = String(98 - mod97(`${b}${country}00`)).padStart(2, '0');
    const compact = `${country}${check}${b}`;
    return place('iban', i, random() < 0.5 ? compact : compact.replace(/(.{4})(?=.)/g, '$1 '));
  },
  us_ssn: (i) => {
    let area = int(1, 899);
    if (area === 666) area = 665;
    return place(
      'us_ssn',
      i,
      `${String(area).padStart(3, '0')}-${String(int(1, 99)).padStart(2, '0')}-${String(int(1, 9999)).padStart(4, '0')}`,
    );
  },
  phone: (i) => {
    const area = `${int(2, 9)}${chars(DIGITS, 2)}`;
    const exchange = `${int(2, 9)}${chars(DIGITS, 2)}`;
    const line = chars(DIGITS, 4);
    const value = pick([
      () => `(${area}) ${exchange}-${line}`,
      () => `${area}-${exchange}-${line}`,
      () => `${area}.${exchange}.${line}`,
      () => `+1 ${area} ${exchange} ${line}`,
      () => `+1${area}${exchange}${line}`,
      () => `+1 (${area}) ${exchange}-${line}`,
      () => `+44 20 ${chars(DIGITS, 4)} ${chars(DIGITS, 4)}`,
      () => `+49 30 ${chars(DIGITS, 7)}`,
      () =>
        `+33 ${int(1, 9)} ${chars(DIGITS, 2)} ${chars(DIGITS, 2)} ${chars(DIGITS, 2)} ${chars(DIGITS, 2)}`,
      () => `+81-3-${chars(DIGITS, 4)}-${chars(DIGITS, 4)}`,
    ])();
    return place('phone', i, value);
  },
  ip_address: (i) => {
    const octet = () => String(int(0, 255));
    const group = () => chars(HEX, int(1, 4)).replace(/^0+(?=.)/, '');
    const value = pick([
      () => `${int(1, 223)}.${octet()}.${octet()}.${int(1, 254)}`,
      () => `${int(1, 223)}.${octet()}.${octet()}.${int(1, 254)}`,
      () => Array.from({ length: 8 }, group).join(':'),
      () => `2001:db8::${group()}:${group()}`,
      () => `fe80::${group()}:${group()}:${group()}:${group()}`,
    ])();
    return place('ip_address', i, value);
  },
};

// ---- negatives ----------------------------------------------------------------------------

interface Negative {
  id: string;
  kind: string;
  text: string;
}

const WORDS =
  'the agent called the tool and the model answered with a plan to retry later because the index was stale'.split(
    ' ',
  );
const prose = (n: number) => Array.from({ length: n }, () => pick(WORDS)).join(' ');

function uuid(): string {
  const hex = chars(HEX, 32);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${pick(['8', '9', 'a', 'b'])}${hex.slice(17, 20)}-${hex.slice(20)}`;
}

function luhnInvalidCard(): string {
  const prefix = pick(['4', '51', '37', '6011']);
  const length = prefix === '37' ? 15 : 16;
  const body = prefix + chars(DIGITS, length - prefix.length - 1);
  const digits = body + ((luhnCheckDigit(body) + int(1, 9)) % 10);
  const separator = pick(['', ' ', '-']);
  return length === 15
    ? [digits.slice(0, 4), digits.slice(4, 10), digits.slice(10)].join(separator)
    : digits.replace(/(\d{4})(?=\d)/g, `$1${separator}`);
}

function badIban(): string {
  const bban = chars(DIGITS, 18);
  const check = (98 - mod97(`${bban}DE00`) + int(1, 90)) % 97;
  const iban = `DE${String(check < 2 ? check + 2 : check).padStart(2, '0')}${bban}`;
  return mod97(iban.slice(4) + iban.slice(0, 4)) === 1 ? `DE00${bban}` : iban;
}

const NEGATIVES: Record<string, () => string> = {
  uuid: () => pick([`run ${uuid()} finished`, `{"id": "${uuid()}"}`, `trace_id=${uuid().toUpperCase()}`]),
  git_sha: () =>
    pick([
      `commit ${chars(HEX, 40)}`,
      `Merge ${chars(HEX, 7)} into ${chars(HEX, 12)}`,
      `HEAD is now at ${chars(HEX, 7)} fix: retry`,
    ]),
  sha256: () => `sha256:${chars(HEX, 64)}`,
  base64_image: () => `<img src="data:image/png;base64,iVBORw0KGgo${chars(BASE64, int(200, 800))}=">`,
  luhn_invalid_card: () => pick(['card on file: ', 'number ', 'ref ']) + luhnInvalidCard(),
  order_number: () => `order #${pick(['1', '9', '8'])}${chars(DIGITS, int(12, 18))} shipped`,
  version: () =>
    pick([
      `v${int(0, 30)}.${int(0, 99)}.${int(0, 99)}`,
      `node ${int(18, 24)}.${int(0, 20)}.${int(0, 9)}`,
      `1.${int(0, 9)}.${int(0, 9)}-beta.${int(1, 9)}`,
      `version ${int(1000, 9999)}.${int(0, 9)}`,
    ]),
  hex_colour: () =>
    pick([
      `color: #${chars(HEX, 6)};`,
      `background: #${chars(HEX, 3).toUpperCase()}`,
      `rgb(${int(0, 255)}, ${int(0, 255)}, ${int(0, 255)})`,
    ]),
  code: () =>
    pick([
      `for (let i = 0; i < ${int(2, 99)}; i++) { total += items[i].price; }`,
      `const apiKey = process.env.OPENAI_API_KEY;`,
      `def area(r): return 3.14159 * r ** ${int(2, 3)}`,
      `SELECT id, email FROM users WHERE id = ${int(1, 99999)};`,
      `token = tokenizer.encode(text)[:${int(10, 4096)}]`,
      `if (password.length < ${int(8, 16)}) throw new Error('too short');`,
      `headers = {"Authorization": f"Bearer {token}"}`,
      `export OPENAI_API_KEY=$OPENAI_API_KEY`,
      `client = Anthropic(api_key=os.environ["ANTHROPIC_API_KEY"])`,
    ]),
  time_and_date: () =>
    pick([
      `2026-${String(int(1, 12)).padStart(2, '0')}-${String(int(1, 28)).padStart(2, '0')}T${int(10, 23)}:${int(10, 59)}:${int(10, 59)}.${chars(DIGITS, 3)}Z`,
      `at ${int(10, 23)}:${int(10, 59)}:${int(10, 59)}`,
      `ts=${1764000000000 + int(0, 9e8)}`,
    ]),
  mac_address: () => Array.from({ length: 6 }, () => chars(HEX, 2).toUpperCase()).join(':'),
  invalid_ssn: () =>
    pick([
      `000-${chars(DIGITS, 2)}-1234`,
      `666-${int(10, 99)}-${int(1000, 9999)}`,
      `9${chars(DIGITS, 2)}-${int(10, 99)}-${int(1000, 9999)}`,
      `${int(100, 599)}-00-${int(1000, 9999)}`,
      `${int(100, 599)}-${int(10, 99)}-0000`,
    ]),
  invalid_iban: () => `IBAN ${badIban()}`,
  invalid_ip: () =>
    pick([
      `${int(256, 999)}.${int(0, 255)}.${int(0, 255)}.${int(0, 255)}`,
      `${int(1, 9)}.${int(0, 9)}.${int(0, 9)}`,
      `section ${int(1, 9)}.${int(1, 9)}`,
    ]),
  not_an_email: () =>
    pick([
      `${pick(NAMES)} at example dot com`,
      `@${pick(NAMES)} please review`,
      `import x from '@rewind/${pick(['redact', 'schema'])}'`,
      `${pick(NAMES)}@localhost`,
    ]),
  key_words_low_entropy: () =>
    pick([
      `max_tokens: ${int(16, 8192)}`,
      `password: ********`,
      `api_key: YOUR_API_KEY`,
      `secret: <redacted>`,
      `token_type: bearer`,
      `the secret to good bread is time`,
      `Use a budget of ${int(100, 9000)} tokens per answer.`,
      `password_reset: true`,
      `token: ${int(1, 99999)}`,
    ]),
  bearer_prose: () =>
    pick([
      'the bearer of this letter',
      'Bearer authentication sends a token in a header',
      'Authorization: Bearer <token>',
    ]),
  prefix_lookalikes: () =>
    pick([
      `pip install scikit-learn; import sk-learn? no, sklearn`,
      `task-management-dashboard-${int(1, 99)}`,
      `AKIA${chars(UPPER, 8)}`,
      `eyJhbGciOiJIUzI1NiJ9 is only a header`,
      `ghp_${chars(ALNUM, 10)}`,
      `xoxb-not-a-token`,
      `sk_live_ in the docs`,
      `AIza${chars(ALNUM, 10)}`,
      `-----BEGIN PUBLIC KEY-----\n${chars(BASE64, 64)}\n-----END PUBLIC KEY-----`,
    ]),
  phone_lookalikes: () =>
    pick([
      `room ${int(100, 999)}-${int(1000, 9999)}`,
      `ext. ${int(1000, 9999)}`,
      `ZIP ${int(10000, 99999)}-${int(1000, 9999)}`,
      `${int(1, 9)} + ${int(1, 9)} = ${int(2, 18)}`,
    ]),
  prose: () => `${prose(int(8, 20))}.`,
  numbers: () =>
    pick([
      `$${int(1, 999)},${chars(DIGITS, 3)},${chars(DIGITS, 3)}.${chars(DIGITS, 2)}`,
      `${int(1, 100)}% of ${int(1000, 99999)} requests`,
      `pi ≈ 3.${chars(DIGITS, 15)}`,
    ]),
};

// ---- output -------------------------------------------------------------------------------

const positives: Positive[] = [];
for (const make of Object.values(POSITIVES)) for (let i = 1; i <= PER_DETECTOR; i++) positives.push(make(i));
const negatives: Negative[] = [];
for (const [kind, make] of Object.entries(NEGATIVES)) {
  for (let i = 1; i <= NEGATIVES_PER_KIND; i++) {
    const sample = make();
    const context = pick(CONTEXTS);
    negatives.push({
      id: `${kind}-${String(i).padStart(4, '0')}`,
      kind,
      text: context.replace('{}', sample),
    });
  }
}

const files: Record<string, string> = {
  'positives.jsonl': `${positives.map((p) => JSON.stringify(p)).join('\n')}\n`,
  'negatives.jsonl': `${negatives.map((n) => JSON.stringify(n)).join('\n')}\n`,
};
const dir = new URL('../fixtures/redaction/', import.meta.url);

if (process.argv.includes('--check')) {
  const stale = Object.entries(files).filter(([name, text]) => {
    try {
      return readFileSync(new URL(name, dir), 'utf8') !== text;
    } catch {
      return true;
    }
  });
  if (stale.length > 0) {
    console.error(
      `fixtures/redaction/${stale.map(([name]) => name).join(', ')} out of date with scripts/gen-redaction-corpus.ts; run \`node scripts/gen-redaction-corpus.ts\` and commit the result`,
    );
    process.exit(1);
  }
  console.log(`redaction corpus: current (${positives.length} positives, ${negatives.length} negatives)`);
} else {
  mkdirSync(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) writeFileSync(new URL(name, dir), text);
  console.log(`wrote fixtures/redaction/ (${positives.length} positives, ${negatives.length} negatives)`);
}
