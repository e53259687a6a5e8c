import { canonicalJson } from '@rewind/schema';
import {
  deriveKeys,
  KEY_ENV,
  open,
  type ProjectKeys,
  parseProjectKey,
  pseudonym,
  SEALED_PREFIX,
  SEALED_SOURCE,
  seal,
} from './crypto.ts';
import {
  DETECTORS,
  type Detector,
  detectorByName,
  looksLikeSecret,
  type Match,
  SECRET_KEY_NAME,
  scanText,
} from './detectors.ts';
import { RedactionKeyError } from './errors.ts';
import { formatPath, type Location, matchesPattern, parseLocation, type Segment } from './paths.ts';
import { type Action, defaultPolicy, type Policy, type Rule } from './policy.ts';
import { createStreamRedactor, type StreamRedactor } from './stream.ts';

/** Why a value could not be scanned; the value is replaced by `[REDACTED:scan_failed:<reason>]`. */
export type ScanFailure = 'too_deep' | 'too_large' | 'detector_error' | 'rule_error' | 'unreadable';

/** One thing redacted. Never holds the redacted value itself. */
export interface Finding {
  /** The detector that found it; `rule` when a field rule matched; `scan_failed` when the value could not be checked. */
  detector: string;
  action: Action;
  /** Where: the field's path (`tool:crm.lookup.response.output.email`, `messages[0].content`), '' for the value itself. */
  path: string;
  /** Offsets (UTF-16 code units) of the finding in the string at `path`; absent when the whole value was replaced. */
  start?: number;
  end?: number;
  /** The finding is in an object key, not a value. */
  inKey?: true;
  /** The rule's path, for `rule` findings. */
  rule?: string;
  /** Why scanning failed, for `scan_failed` findings. */
  reason?: ScanFailure;
}

export interface Redacted<T = unknown> {
  value: T;
  findings: Finding[];
}

export interface RedactorOptions {
  /** The project key: 32 bytes, or their base64. Default: $REWIND_PROJECT_KEY. */
  key?: string | Uint8Array | undefined;
  /** Where REWIND_PROJECT_KEY is read from (default process.env). */
  env?: Record<string, string | undefined>;
  /** Streams: the most text held back while a token may still be growing (default 64 KiB). */
  maxStreamHoldback?: number;
}

export interface Redactor {
  readonly policy: Policy;
  /** Whether a project key is present (sealed values can be opened). */
  readonly hasKey: boolean;
  /** Redacts a JSON value found at `at` (`run.input`, `tool:crm.lookup.response`, …; '' for nowhere in particular). */
  redactValue(value: unknown, at?: string): Redacted;
  /** Redacts one string (detectors only: rules need a field). */
  redactText(text: string, at?: string): Redacted<string>;
  /** A redactor for one stream of text chunks (a streamed model answer). */
  createStream(at?: string): StreamRedactor;
  /** Opens every sealed value inside `value`; without the key (or with another key) they stay sealed. */
  unseal(value: unknown): unknown;
}

export const DROPPED = (label: string) => `[DROPPED:${label}]`;
export const MASKED = (label: string) => `[REDACTED:${label}]`;
export const SCAN_FAILED = (reason: ScanFailure) => `[REDACTED:scan_failed:${reason}]`;

const DROP = Symbol('drop');

function resolveKeys(policy: Policy, options: RedactorOptions): ProjectKeys | undefined {
  let bytes: Uint8Array | undefined;
  if (options.key !== undefined) {
    if (typeof options.key === 'string') bytes = parseProjectKey(options.key, 'the `key` option');
    else if (options.key.length !== 32)
      throw new RedactionKeyError(`the \`key\` option must be 32 bytes, got ${options.key.length}`);
    else bytes = options.key;
  } else {
    const text = (options.env ?? process.env)[KEY_ENV];
    if (text !== undefined && text !== '') bytes = parseProjectKey(text, KEY_ENV);
  }
  if (bytes !== undefined) return deriveKeys(bytes);
  const keyed = [
    ...Object.entries(policy.detectors)
      .filter(([, action]) => action === 'hash' || action === 'seal')
      .map(([name, action]) => `detectors.${name}: ${action}`),
    ...policy.rules
      .filter((rule) => rule.action === 'hash' || rule.action === 'seal')
      .map((rule) => `rule ${rule.path.source}: ${rule.action}`),
  ];
  if (keyed.length > 0) {
    throw new RedactionKeyError(
      `the redaction policy needs a project key (${keyed.slice(0, 3).join(', ')}${keyed.length > 3 ? ', …' : ''}), but none was given: set ${KEY_ENV} to 32 random bytes in base64 (\`openssl rand -base64 32\`), keep it with your other secrets, or pass {key} to createRedactor`,
    );
  }
  return undefined;
}

/** Applies span actions to a string; `drop` anywhere drops the whole string (it returns DROP). */
export interface SpanApplier {
  detectors: readonly Detector[];
  apply(
    text: string,
    matches: readonly Match[],
    dropWhole: boolean,
  ): { text: string | typeof DROP; dropped?: string };
  actionOf(detector: Detector): Action;
}

export function createRedactor(policy: Policy = defaultPolicy(), options: RedactorOptions = {}): Redactor {
  const keys = resolveKeys(policy, options);
  const detectors = DETECTORS.filter((detector) => policy.detectors[detector.name] !== 'off');
  const actionOf = (detector: Detector) => policy.detectors[detector.name] as Action;
  const highEntropy = detectors.find((detector) => detector === detectorByName('high_entropy'));
  const limits = policy.limits;

  function replacement(action: Action, label: string, value: unknown): string {
    switch (action) {
      case 'mask':
        return MASKED(label);
      case 'drop':
        return DROPPED(label);
      case 'hash':
        return pseudonym(keys!, label, typeof value === 'string' ? value : canonicalJson(value));
      case 'seal':
        return typeof value === 'string'
          ? seal(keys!, label, 's', value)
          : seal(keys!, label, 'j', canonicalJson(value));
    }
  }

  const spans: SpanApplier = {
    detectors,
    actionOf,
    apply(text, matches, dropWhole) {
      let out = '';
      let at = 0;
      for (const match of matches) {
        const action = actionOf(match.detector);
        if (action === 'drop' && dropWhole) return { text: DROP, dropped: match.detector.name };
        out +=
          text.slice(at, match.start) +
          replacement(action, match.detector.name, text.slice(match.start, match.end));
        at = match.end;
      }
      return { text: out + text.slice(at) };
    },
  };

  /** Scans one string: the redacted string (or DROP) and its findings. */
  function scanString(
    text: string,
    path: () => string,
    budget: { left: number },
    inKey: boolean,
    secretKey = false,
  ): { text: string | typeof DROP; findings: Finding[] } {
    const failed = (reason: ScanFailure) => ({
      text: SCAN_FAILED(reason),
      findings: [
        {
          detector: 'scan_failed',
          action: 'mask' as Action,
          path: path(),
          reason,
          ...(inKey && { inKey: true as const }),
        },
      ],
    });
    if (text.length > limits.maxStringLength || text.length > budget.left) {
      budget.left = 0;
      return failed('too_large');
    }
    budget.left -= text.length;
    if (detectors.length === 0 || text.length === 0) return { text, findings: [] };
    let matches: Match[];
    try {
      matches = scanText(text, detectors);
    } catch {
      return failed('detector_error');
    }
    // The value of a key named like a secret ({"api_key": "…"}): the key word is the context.
    if (
      matches.length === 0 &&
      secretKey &&
      highEntropy !== undefined &&
      !/\s/.test(text) &&
      looksLikeSecret(text)
    ) {
      matches = [{ detector: highEntropy, start: 0, end: text.length }];
    }
    if (matches.length === 0) return { text, findings: [] };
    try {
      const applied = spans.apply(text, matches, true);
      const where = path();
      const findings: Finding[] = matches.map((match) => ({
        detector: match.detector.name,
        action: actionOf(match.detector),
        path: where,
        start: match.start,
        end: match.end,
        ...(inKey && { inKey: true as const }),
      }));
      if (applied.text === DROP) return { text: inKey ? DROP : DROPPED(applied.dropped!), findings };
      return { text: applied.text, findings };
    } catch {
      return failed('rule_error');
    }
  }

  function ruleFor(location: Location, segments: readonly Segment[]): Rule | undefined {
    if (location.scope === undefined) return undefined;
    for (const rule of policy.rules) if (matchesPattern(rule.path, location, segments)) return rule;
    return undefined;
  }

  function redactValue(value: unknown, at = ''): Redacted {
    const location = parseLocation(at);
    const findings: Finding[] = [];
    const budget = { left: limits.maxTotalLength };
    // Raw keys for rule matching; the keys as redacted for the paths findings report (a key may be an email).
    const segments: Segment[] = [...location.segments];
    const shown: Segment[] = [...location.segments];

    const walk = (node: unknown, depth: number): unknown => {
      const path = () => formatPath(location, shown);
      const rule = policy.rules.length === 0 ? undefined : ruleFor(location, segments);
      if (rule !== undefined) {
        findings.push({ detector: 'rule', action: rule.action, path: path(), rule: rule.path.source });
        if (rule.action === 'drop') return DROP;
        try {
          return replacement(rule.action, rule.label, node);
        } catch {
          findings.push({ detector: 'scan_failed', action: 'mask', path: path(), reason: 'rule_error' });
          return SCAN_FAILED('rule_error');
        }
      }
      if (depth > limits.maxDepth) {
        findings.push({ detector: 'scan_failed', action: 'mask', path: path(), reason: 'too_deep' });
        return SCAN_FAILED('too_deep');
      }
      switch (typeof node) {
        case 'string': {
          const parent = segments[segments.length - 1];
          const secretKey = typeof parent === 'string' && SECRET_KEY_NAME.test(parent);
          const result = scanString(node, path, budget, false, secretKey);
          findings.push(...result.findings);
          return result.text;
        }
        case 'number':
        case 'bigint': {
          // A card number or phone may arrive as a number: scan its digits too. Only whole numbers:
          // the digits of a fraction (a score 0.4532015112830366, a Math.random() on the tape) are
          // a measurement, and one in 36 of them would pass for a card number with a valid Luhn digit.
          if (typeof node === 'number' && !Number.isInteger(node)) return node;
          const result = scanString(String(node), path, budget, false);
          if (result.findings.length === 0) return node;
          findings.push(...result.findings);
          return result.text;
        }
        case 'object': {
          if (node === null) return null;
          const depthAtEntry = segments.length;
          try {
            return walkObject(node, depth);
          } catch {
            // A getter or toJSON that throws, a revoked proxy: what cannot be read is not passed on.
            segments.length = depthAtEntry;
            shown.length = depthAtEntry;
            findings.push({ detector: 'scan_failed', action: 'mask', path: path(), reason: 'unreadable' });
            return SCAN_FAILED('unreadable');
          }
        }
        default:
          return node;
      }
    };

    const walkObject = (node: object, depth: number): unknown => {
      if (Array.isArray(node)) {
        const out: unknown[] = [];
        for (let i = 0; i < node.length; i++) {
          segments.push(i);
          shown.push(i);
          const child = walk(node[i], depth + 1);
          segments.pop();
          shown.pop();
          out.push(child === DROP ? DROPPED(dropLabel(findings)) : child);
        }
        return out;
      }
      const toJSON = (node as { toJSON?: unknown }).toJSON;
      if (typeof toJSON === 'function') return walk(toJSON.call(node), depth);
      const out: Record<string, unknown> = {};
      for (const key of Object.keys(node)) {
        let name = key;
        const keyResult = scanString(key, () => formatPath(location, shown), budget, true);
        if (keyResult.findings.length > 0 || keyResult.text !== key) {
          findings.push(...keyResult.findings);
          if (keyResult.text === DROP) continue;
          name = keyResult.text;
          for (let n = 2; Object.hasOwn(out, name); n++) name = `${keyResult.text}#${n}`;
        }
        segments.push(key);
        shown.push(name);
        const child = walk((node as Record<string, unknown>)[key], depth + 1);
        segments.pop();
        shown.pop();
        if (child !== DROP) out[name] = child;
      }
      return out;
    };

    const result = walk(value, 0);
    return { value: result === DROP ? DROPPED(dropLabel(findings)) : result, findings };
  }

  /** A stream at a place a rule covers: nothing is emitted until the end, then the rule's replacement of the whole text. */
  function wholeValueStream(rule: Rule, path: string): StreamRedactor {
    const findings: Finding[] = [];
    let text = '';
    let scannedChars = 0;
    let tooLarge = false;
    return {
      findings,
      get scannedChars() {
        return scannedChars;
      },
      push(chunk) {
        scannedChars += chunk.length;
        if (!tooLarge && text.length + chunk.length > limits.maxStringLength) {
          tooLarge = true;
          text = '';
        }
        if (!tooLarge) text += chunk;
        return '';
      },
      end() {
        if (tooLarge) {
          findings.push({ detector: 'scan_failed', action: 'mask', path, reason: 'too_large' });
          return SCAN_FAILED('too_large');
        }
        findings.push({ detector: 'rule', action: rule.action, path, rule: rule.path.source });
        try {
          return replacement(rule.action, rule.label, text);
        } catch {
          return SCAN_FAILED('rule_error');
        }
      },
    };
  }

  /** The label of the drop just recorded: its rule's label, else its detector. */
  function dropLabel(findings: Finding[]): string {
    const last = findings[findings.length - 1];
    if (last?.rule !== undefined)
      return policy.rules.find((rule) => rule.path.source === last.rule)?.label ?? 'field';
    return last?.detector ?? 'field';
  }

  function unsealValue(value: unknown, depth: number): unknown {
    if (keys === undefined || depth > limits.maxDepth) return value;
    if (typeof value === 'string') {
      if (!value.includes(SEALED_PREFIX)) return value;
      let whole: unknown;
      let wholeSet = false;
      const text = value.replace(
        new RegExp(SEALED_SOURCE, 'g'),
        (token, label: string, keyId: string, data: string) => {
          const opened = open(keys, label, keyId, data);
          if (opened === undefined) return token;
          if (opened.kind === 'j' && token === value) {
            whole = JSON.parse(opened.text);
            wholeSet = true;
            return token;
          }
          return opened.text;
        },
      );
      return wholeSet ? whole : text;
    }
    if (Array.isArray(value)) return value.map((item) => unsealValue(item, depth + 1));
    if (typeof value === 'object' && value !== null) {
      const out: Record<string, unknown> = {};
      for (const [key, item] of Object.entries(value))
        out[unsealValue(key, depth + 1) as string] = unsealValue(item, depth + 1);
      return out;
    }
    return value;
  }

  return {
    policy,
    hasKey: keys !== undefined,
    redactValue,
    redactText(text, at = '') {
      const { value, findings } = redactValue(text, at);
      return { value: typeof value === 'string' ? value : JSON.stringify(value), findings };
    },
    createStream(at = '') {
      const location = parseLocation(at);
      const path = formatPath(location, location.segments);
      const rule = ruleFor(location, location.segments);
      if (rule !== undefined) return wholeValueStream(rule, path);
      return createStreamRedactor(spans, {
        path,
        maxHoldback: options.maxStreamHoldback ?? 64 * 1024,
        maxStringLength: limits.maxStringLength,
      });
    },
    unseal: (value) => unsealValue(value, 0),
  };
}

/** Opens the sealed values inside `value` with the project key (options or $REWIND_PROJECT_KEY). */
export function unseal(value: unknown, options: RedactorOptions = {}): unknown {
  const redactor = createRedactor(defaultPolicy(), options);
  if (!redactor.hasKey) {
    throw new RedactionKeyError(
      `sealed values can only be opened with the project key: set ${KEY_ENV} or pass {key}`,
    );
  }
  return redactor.unseal(value);
}
