// The built-in detectors. Each is one or more regular expressions plus an optional validator
// (checksums, octet ranges, entropy) that turns a candidate into a finding.
//
// Linear time (docs/redaction.md, "Why scanning is linear"): V8's regex engine backtracks, so
// every pattern here keeps to three rules, checked by detectors.test.ts:
//   1. every quantifier is bounded ({m,n}, never + * or {m,}), so one attempt costs at most a
//      constant number of steps;
//   2. a pattern that starts with a character run starts with a negative lookbehind of that
//      run's characters, so an attempt only starts where such a run starts, not at every
//      position inside it;
//   3. a quantified group repeats a bounded number of times, so backtracking inside one attempt
//      is bounded by a constant too.
// Work is then at most (positions where a run starts) × (the pattern's bound): linear in n.

export type DetectorCategory = 'secret' | 'pii';

export interface DetectorPattern {
  /** Global (`g`) and with match indices (`d`); `group` names the capture holding the value. */
  regex: RegExp;
  group?: number;
}

export interface Detector {
  name: string;
  category: DetectorCategory;
  description: string;
  patterns: DetectorPattern[];
  /**
   * A cheap test every finding passes (a literal the patterns need): text without it is not
   * scanned by the patterns at all. Non-global, so `test` keeps no state.
   */
  hint: RegExp;
  /** Whether a candidate is a real finding (checksums, ranges, entropy). */
  validate?: (value: string) => boolean;
  /** The longest value this detector can find: how much text a stream must hold back. */
  maxLength: number;
}

function pattern(source: string, group?: number): DetectorPattern {
  return group === undefined
    ? { regex: new RegExp(source, 'gd') }
    : { regex: new RegExp(source, 'gd'), group };
}

// ---- validators -------------------------------------------------------------------------

export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

/** Card numbers: 13–19 digits, one separator style, a known issuer prefix and the Luhn check. */
function validCard(value: string): boolean {
  const separators = new Set(value.replace(/\d/g, ''));
  if (separators.size > 1) return false;
  // Written in groups, a card is 4-4-4-4(-3), or 4-6-5 / 4-6-4 (Amex, Diners): not a UUID's 8-4-4.
  if (separators.size === 1) {
    const groups = value
      .split(/[ -]/)
      .map((group) => group.length)
      .join('-');
    if (!/^(4-4-4-[1-4]|4-4-4-4-[1-3]|4-6-[45])$/.test(groups)) return false;
  }
  const digits = value.replace(/[ -]/g, '');
  if (digits.length < 13 || digits.length > 19) return false;
  const issuer =
    /^4/.test(digits) || // Visa
    /^(5[1-5]|2(2[2-9]|[3-6]\d|7[01]|720))/.test(digits) || // Mastercard
    /^3[47]/.test(digits) || // American Express
    /^(6011|65|64[4-9])/.test(digits) || // Discover
    /^35(2[89]|[3-8]\d)/.test(digits) || // JCB
    /^3(0[0-5]|[689])/.test(digits) || // Diners Club
    /^62/.test(digits); // UnionPay
  return issuer && luhnValid(digits);
}

/** IBAN lengths by country (ISO 13616 registry). */
export const IBAN_LENGTHS: Record<string, number> = {
  AD: 24, AE: 23, AL: 28, AT: 20, AZ: 28, BA: 20, BE: 16, BG: 22, BH: 22, BR: 29, CH: 21, CR: 22,
  CY: 28, CZ: 24, DE: 22, DK: 18, DO: 28, EE: 20, ES: 24, FI: 18, FO: 18, FR: 27, GB: 22, GE: 22,
  GI: 23, GL: 18, GR: 27, GT: 28, HR: 21, HU: 28, IE: 22, IL: 23, IS: 26, IT: 27, JO: 30, KW: 30,
  KZ: 20, LB: 28, LI: 21, LT: 20, LU: 20, LV: 21, MC: 27, MD: 24, ME: 22, MK: 19, MR: 27, MT: 31,
  MU: 30, NL: 18, NO: 15, PK: 24, PL: 28, PS: 29, PT: 25, QA: 29, RO: 24, RS: 22, SA: 24, SE: 24,
  SI: 19, SK: 24, SM: 27, TN: 24, TR: 26, UA: 29, VG: 24, XK: 20,
}; // biome-ignore format: a table

/** ISO 7064 mod 97-10 over the rearranged IBAN, computed piecewise (no big integers). */
export function ibanChecksumValid(iban: string): boolean {
  const rearranged = iban.slice(4) + iban.slice(0, 4);
  let remainder = 0;
  for (const char of rearranged) {
    const code = char.charCodeAt(0);
    const value = code >= 65 ? code - 55 : code - 48;
    remainder = value >= 10 ? (remainder * 100 + value) % 97 : (remainder * 10 + value) % 97;
  }
  return remainder === 1;
}

function validIban(value: string): boolean {
  const iban = value.replace(/ /g, '');
  const length = IBAN_LENGTHS[iban.slice(0, 2)];
  return length === iban.length && ibanChecksumValid(iban);
}

function validIpv4(value: string): boolean {
  return value.split('.').every((octet) => (octet === '0' || !octet.startsWith('0')) && Number(octet) <= 255);
}

function validIpv6(value: string): boolean {
  const halves = value.split('::');
  if (halves.length > 2) return false;
  const groups = (half: string | undefined) => (half === undefined || half === '' ? [] : half.split(':'));
  const head = groups(halves[0]);
  const tail = groups(halves[1]);
  const all = [...head, ...tail];
  if (!all.every((group) => /^[0-9A-Fa-f]{1,4}$/.test(group))) return false;
  // At least two written groups and one letter or a `::`, so times (12:30:45) and MACs never pass.
  if (all.length < 2) return false;
  return halves.length === 2 ? all.length <= 7 : all.length === 8;
}

function validSsn(value: string): boolean {
  const [area, group, serial] = value.split('-') as [string, string, string];
  const areaNumber = Number(area);
  return areaNumber !== 0 && areaNumber !== 666 && areaNumber < 900 && group !== '00' && serial !== '0000';
}

function validPhone(value: string): boolean {
  const digits = value.replace(/\D/g, '');
  return digits.length >= 10 && digits.length <= 15;
}

/** Shannon entropy in bits per character. */
export function entropy(value: string): number {
  const counts = new Map<string, number>();
  for (const char of value) counts.set(char, (counts.get(char) ?? 0) + 1);
  let bits = 0;
  for (const count of counts.values()) {
    const p = count / value.length;
    bits -= p * Math.log2(p);
  }
  return bits;
}

/**
 * What the redactor itself writes: a marker, a pseudonym, a sealed token. Not a secret, so that
 * redacting twice finds nothing the second time (the server checks what the SDK redacted with the
 * same policy, and a blob it finds something in is rejected).
 */
const REDACTION_OUTPUT =
  /^(?:\[(?:REDACTED|DROPPED):[a-z0-9_.:-]{1,80}\]|«[a-z0-9_.-]{1,40}:[0-9a-f]{12}»|«sealed:v1:[a-z0-9_.-]{1,40}:[0-9a-f]{8}:[A-Za-z0-9_-]{1,16777216}»)$/;
/** The tail of a pseudonym or sealed token whose label is a key word (`«aws_access_key:3f9a…»`): what follows `access_key:`. */
const REDACTION_TAIL = /^(?:[0-9a-f]{12}»|[0-9a-f]{8}:[A-Za-z0-9_-]{1,16777216}»)/;

/** A value next to a key word that looks generated: long enough, mixed, and random-looking. */
export function looksLikeSecret(value: string): boolean {
  if (value.length < 8) return false;
  if (REDACTION_OUTPUT.test(value) || REDACTION_TAIL.test(value)) return false;
  const classes =
    Number(/[a-z]/.test(value)) +
    Number(/[A-Z]/.test(value)) +
    Number(/\d/.test(value)) +
    Number(/[^A-Za-z0-9]/.test(value));
  if (classes < 2) return false;
  if (/^\d+(\.\d+)*$/.test(value) || /^(true|false|null|none|undefined)$/i.test(value)) return false;
  if (/^(https?:\/\/|\/|\.\/|\$|\{\{|<|%)/.test(value)) return false; // URLs, paths, variables, templates
  // References to where a secret lives, not the secret: process.env.OPENAI_API_KEY, OPENAI_API_KEY.
  if (/^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)+$/.test(value) || /^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$/.test(value))
    return false;
  return entropy(value) >= 3;
}

function hasLetterAndDigit(value: string): boolean {
  return /\d/.test(value) && /[A-Za-z]/.test(value);
}

function validJwt(value: string): boolean {
  const header = value.slice(0, value.indexOf('.'));
  try {
    const decoded: unknown = JSON.parse(Buffer.from(header, 'base64url').toString('utf8'));
    return typeof decoded === 'object' && decoded !== null && 'alg' in decoded;
  } catch {
    return false;
  }
}

// ---- the detectors ----------------------------------------------------------------------

const KEY_WORDS =
  '(?:password|passwd|passphrase|pwd|secret|client[_-]?secret|token|access[_-]?token|refresh[_-]?token|api[_-]?key|apikey|access[_-]?key|auth[_-]?key|private[_-]?key|credentials?)';

/** An object key that names a secret (`password`, `DB_PASSWORD`, `apiKey`, `client_secret`): its string value is checked with looksLikeSecret. */
export const SECRET_KEY_NAME = new RegExp(`(?:^|[^A-Za-z0-9]|[a-z](?=[A-Z]))(?i:${KEY_WORDS})s?$`);

export const DETECTORS: readonly Detector[] = [
  {
    name: 'private_key',
    hint: /PRIVATE KEY-----/,
    category: 'secret',
    description: 'PEM private keys (RSA, EC, DSA, OpenSSH, PKCS#8, encrypted), up to the END line',
    patterns: [
      pattern(
        '-----BEGIN (?:[A-Z0-9]{1,16} ){0,3}PRIVATE KEY-----(?:[A-Za-z0-9+/=\\r\\n\\t :,]|\\\\[nr]|-(?!----)){0,20000}(?:-----END (?:[A-Z0-9]{1,16} ){0,3}PRIVATE KEY-----)?',
      ),
    ],
    maxLength: 20_100,
  },
  {
    name: 'jwt',
    hint: /eyJ/,
    category: 'secret',
    description: 'JSON Web Tokens: three base64url parts whose header is JSON with "alg"',
    patterns: [
      pattern(
        '(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{5,4096}\\.eyJ[A-Za-z0-9_-]{2,8192}\\.[A-Za-z0-9_-]{0,4096}(?![A-Za-z0-9_-])',
      ),
    ],
    validate: validJwt,
    maxLength: 16_400,
  },
  {
    name: 'anthropic',
    hint: /sk-ant-/,
    category: 'secret',
    description: 'Anthropic API keys (sk-ant-api03-…, sk-ant-admin01-…)',
    patterns: [
      pattern('(?<![A-Za-z0-9_-])sk-ant-(?:api|admin|oat|sid)\\d{2}-[A-Za-z0-9_-]{20,200}(?![A-Za-z0-9_-])'),
    ],
    maxLength: 220,
  },
  {
    name: 'openai',
    hint: /sk-/,
    category: 'secret',
    description: 'OpenAI API keys (sk-…, sk-proj-…, sk-svcacct-…, sk-admin-…)',
    patterns: [pattern('(?<![A-Za-z0-9_-])sk-(?!ant-)[A-Za-z0-9_-]{20,250}(?![A-Za-z0-9_-])')],
    validate: hasLetterAndDigit,
    maxLength: 260,
  },
  {
    name: 'aws_access_key',
    hint: /A(?:KIA|SIA|BIA|CCA|GPA|IDA|ROA|IPA|NPA|NVA|PKA)/,
    category: 'secret',
    description: 'AWS access key ids (AKIA…, ASIA…, and the other IAM prefixes)',
    patterns: [
      pattern(
        '(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA)[A-Z2-7]{16}(?![A-Za-z0-9])',
      ),
    ],
    maxLength: 20,
  },
  {
    name: 'aws_secret_key',
    hint: /[Ss][Ee][Cc][Rr][Ee][Tt]/,
    category: 'secret',
    description: 'AWS secret access keys: 40 base64 characters after an aws_secret_access_key-like name',
    patterns: [
      pattern(
        '(?<![A-Za-z0-9])(?:[Aa][Ww][Ss]_?)?(?:[Ss][Ee][Cc][Rr][Ee][Tt]_?(?:[Aa][Cc][Cc][Ee][Ss][Ss]_?)?[Kk][Ee][Yy])(?:_?[Ii][Dd])?["\']?\\s{0,3}(?:[:=]|=>)\\s{0,3}["\']?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])',
        1,
      ),
    ],
    validate: (value) => /[A-Z]/.test(value) && /[a-z]/.test(value) && /\d/.test(value),
    maxLength: 40,
  },
  {
    name: 'github',
    hint: /gh[pousr]_|github_pat_/,
    category: 'secret',
    description: 'GitHub tokens (ghp_, gho_, ghu_, ghs_, ghr_, github_pat_)',
    patterns: [
      pattern('(?<![A-Za-z0-9_])gh[pousr]_[A-Za-z0-9]{36,251}(?![A-Za-z0-9_])'),
      pattern('(?<![A-Za-z0-9_])github_pat_[A-Za-z0-9_]{50,244}(?![A-Za-z0-9_])'),
    ],
    maxLength: 255,
  },
  {
    name: 'slack',
    hint: /xox|xapp-|hooks\.slack\.com/,
    category: 'secret',
    description: 'Slack tokens (xoxb-, xoxp-, xoxa-, xoxr-, xoxs-, xoxe-, xapp-) and incoming webhook URLs',
    patterns: [
      pattern('(?<![A-Za-z0-9_-])xox[abeoprs]-[A-Za-z0-9-]{10,250}(?![A-Za-z0-9_-])'),
      pattern('(?<![A-Za-z0-9_-])xapp-\\d-[A-Za-z0-9-]{10,250}(?![A-Za-z0-9_-])'),
      pattern('https://hooks\\.slack\\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/]{20,200}'),
    ],
    validate: hasLetterAndDigit,
    maxLength: 260,
  },
  {
    name: 'stripe',
    hint: /_live_|_test_|whsec_/,
    category: 'secret',
    description:
      'Stripe secret and restricted keys (sk_live_, rk_live_, sk_test_, rk_test_) and webhook secrets (whsec_)',
    patterns: [
      pattern('(?<![A-Za-z0-9_])(?:(?:sk|rk)_(?:live|test)|whsec)_[A-Za-z0-9]{20,247}(?![A-Za-z0-9_])'),
    ],
    maxLength: 255,
  },
  {
    name: 'google_api_key',
    hint: /AIza/,
    category: 'secret',
    description: 'Google API keys (AIza followed by 35 characters)',
    patterns: [pattern('(?<![A-Za-z0-9_-])AIza[0-9A-Za-z_-]{35}(?![A-Za-z0-9_-])')],
    maxLength: 39,
  },
  {
    name: 'bearer',
    hint: /[Bb]earer|BEARER/,
    category: 'secret',
    description: 'Bearer tokens: the value after "Authorization: Bearer" or "Bearer "',
    patterns: [
      pattern(
        '(?<![A-Za-z0-9_-])(?:[Aa]uthorization["\']?\\s{0,3}[:=]\\s{0,3}["\']?\\s{0,3})?(?:[Bb]earer|BEARER)\\s{1,3}([A-Za-z0-9._~+/-]{12,4096}=?=?)(?![A-Za-z0-9._~+/=-])',
        1,
      ),
    ],
    validate: hasLetterAndDigit,
    maxLength: 4100,
  },
  {
    name: 'high_entropy',
    hint: /pass|pwd|secret|token|key|credential/i,
    category: 'secret',
    description:
      'high-entropy values next to key words: password, secret, token, api_key, access_key, private_key, credentials',
    patterns: [
      pattern(
        `(?<![A-Za-z0-9])(?:[A-Za-z0-9]{1,30}[_.-])?(?i:${KEY_WORDS})s?["']?\\s{0,3}(?::=|=>|[:=])\\s{0,3}["']?([^\\s"'\`,;<>(){}\\[\\]]{8,4096})`,
        1,
      ),
    ],
    validate: looksLikeSecret,
    maxLength: 4096,
  },
  {
    name: 'email',
    hint: /@/,
    category: 'pii',
    description: 'email addresses',
    patterns: [
      pattern(
        "(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+'-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.){1,8}[A-Za-z]{2,24}(?![A-Za-z0-9-])",
      ),
    ],
    maxLength: 320,
  },
  {
    name: 'iban',
    hint: /[A-Z]{2}\d\d/,
    category: 'pii',
    description: 'IBANs (country length and ISO 7064 mod-97 checksum), compact or in groups of four',
    patterns: [
      pattern('(?<![A-Za-z0-9])[A-Z]{2}\\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![A-Za-z0-9])'),
    ],
    validate: validIban,
    maxLength: 42,
  },
  {
    name: 'credit_card',
    hint: /\d[ -]?\d[ -]?\d[ -]?\d/,
    category: 'pii',
    description: 'payment card numbers (13–19 digits, known issuer prefix, Luhn checksum)',
    patterns: [pattern('(?<![\\d-])\\d(?:[ -]?\\d){12,18}(?![\\d])')],
    validate: validCard,
    maxLength: 23,
  },
  {
    name: 'us_ssn',
    hint: /\d-\d\d-\d/,
    category: 'pii',
    description: 'US social security numbers (AAA-GG-SSSS with a valid area, group and serial)',
    patterns: [pattern('(?<![\\d-])\\d{3}-\\d{2}-\\d{4}(?![\\d-])')],
    validate: validSsn,
    maxLength: 11,
  },
  {
    name: 'phone',
    hint: /\+\d|\d{3}/,
    category: 'pii',
    description: 'phone numbers: +international (E.164, spaced) and North American formats',
    patterns: [
      pattern('(?<![\\w+])\\+\\d{1,3}(?:[ .-]?\\(?\\d{1,4}\\)?){2,5}(?!\\w|[.-]\\d)'),
      pattern('(?<![\\w.+-])(?:\\(\\d{3}\\) ?|\\d{3}[.-])\\d{3}[.-]\\d{4}(?!\\w|[.-]\\d)'),
    ],
    validate: validPhone,
    maxLength: 32,
  },
  {
    name: 'ip_address',
    hint: /\d\.\d|[0-9A-Fa-f]:[0-9A-Fa-f]*:/,
    category: 'pii',
    description: 'IPv4 and IPv6 addresses',
    patterns: [
      pattern('(?<![\\w.])(?:\\d{1,3}\\.){3}\\d{1,3}(?!\\w|\\.\\d)'),
      pattern('(?<![\\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\\w:])'),
    ],
    validate: (value) => (value.includes(':') ? validIpv6(value) : validIpv4(value)),
    maxLength: 39,
  },
];

export const DETECTOR_NAMES: readonly string[] = DETECTORS.map((detector) => detector.name);

export function detectorByName(name: string): Detector | undefined {
  return DETECTORS.find((detector) => detector.name === name);
}

/** What a scan did, for tests that bound the work: candidates found by the patterns, and their total length. */
export interface ScanStats {
  candidates: number;
  candidateChars: number;
}

export interface Match {
  detector: Detector;
  start: number;
  end: number;
}

/**
 * Every finding of `detectors` in `text`, sorted by start, overlaps resolved: where two
 * overlap, the one earlier in DETECTORS (more specific) names the span, and the span grows to
 * cover both, so nothing found is left half-visible.
 */
export function scanText(text: string, detectors: readonly Detector[], stats?: ScanStats): Match[] {
  const found: Array<Match & { rank: number }> = [];
  for (const detector of detectors) {
    if (!detector.hint.test(text)) continue;
    const rank = DETECTORS.indexOf(detector);
    for (const { regex, group } of detector.patterns) {
      regex.lastIndex = 0;
      for (let m = regex.exec(text); m !== null; m = regex.exec(text)) {
        const span = m.indices?.[group ?? 0];
        const value = m[group ?? 0];
        if (span === undefined || value === undefined) continue;
        if (stats !== undefined) {
          stats.candidates++;
          stats.candidateChars += m[0].length;
        }
        if (detector.validate !== undefined && !detector.validate(value)) {
          // A rejected candidate may hide a real one that starts inside it (a card after an
          // order number): look again one character on. Starts are anchored, so this stays linear.
          // A pattern whose value follows a key word (it has a group) moves past the value instead:
          // the next key word cannot start inside it.
          regex.lastIndex = group === undefined ? m.index + 1 : m.index + m[0].length;
          continue;
        }
        found.push({ detector, start: span[0], end: span[1], rank });
      }
    }
  }
  if (found.length <= 1) return found.map(({ detector, start, end }) => ({ detector, start, end }));
  found.sort((a, b) => a.start - b.start || a.rank - b.rank || b.end - a.end);
  const out: Match[] = [];
  for (const match of found) {
    const last = out[out.length - 1];
    if (last !== undefined && match.start < last.end) {
      if (DETECTORS.indexOf(match.detector) < DETECTORS.indexOf(last.detector))
        last.detector = match.detector;
      last.end = Math.max(last.end, match.end);
      continue;
    }
    out.push({ detector: match.detector, start: match.start, end: match.end });
  }
  return out;
}
