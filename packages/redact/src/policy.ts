import { readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { DETECTOR_NAMES, DETECTORS, type DetectorCategory } from './detectors.ts';
import { PolicyError } from './errors.ts';
import { type PathPattern, PathSyntaxError, parsePathPattern } from './paths.ts';

// The redaction policy (docs/redaction.md): versioned JSON, in `rewind.policy.json` or under
// "policy" in `rewind.config.json`.

export const POLICY_VERSION = 1;
export const POLICY_FILE_NAME = 'rewind.policy.json';
export const CONFIG_FILE_NAME = 'rewind.config.json';

export type Action = 'mask' | 'hash' | 'drop' | 'seal';
export type DetectorSetting = Action | 'off';
export const ACTIONS: readonly Action[] = ['mask', 'hash', 'drop', 'seal'];

export interface Limits {
  /** Nesting deeper than this is not scanned: the subtree becomes `[REDACTED:scan_failed:too_deep]`. */
  maxDepth: number;
  /** A longer string is not scanned: it becomes `[REDACTED:scan_failed:too_large]`. */
  maxStringLength: number;
  /** Characters scanned per value in all; strings past it become `[REDACTED:scan_failed:too_large]`. */
  maxTotalLength: number;
}

export const DEFAULT_LIMITS: Limits = { maxDepth: 64, maxStringLength: 1 << 20, maxTotalLength: 16 << 20 };

export interface Rule {
  path: PathPattern;
  action: Action;
  /** What markers and pseudonyms call the field: `[REDACTED:<label>]`. */
  label: string;
}

/** A validated policy, ready for createRedactor. */
export interface Policy {
  version: 1;
  /** The action of every detector ('off' when it does not run). */
  detectors: Record<string, DetectorSetting>;
  rules: Rule[];
  limits: Limits;
}

/** The policy as written in JSON. */
export interface PolicyJson {
  version: 1;
  detectors?: Record<string, DetectorSetting>;
  rules?: Array<{ path: string; action: Action; label?: string }>;
  limits?: Partial<Limits>;
}

const CATEGORY_KEYS: Record<string, DetectorCategory> = { secrets: 'secret', pii: 'pii' };
const SETTINGS: readonly DetectorSetting[] = [...ACTIONS, 'off'];
const LABEL = /^[a-z0-9_.-]{1,40}$/;

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return JSON.stringify(value);
  return typeof value === 'object' ? 'an object' : `${typeof value} ${String(value)}`;
}

function nearest(name: string, names: readonly string[]): string {
  const close = names.filter(
    (candidate) => candidate.includes(name) || name.includes(candidate) || candidate[0] === name[0],
  );
  return close.length > 0 ? ` (did you mean ${close.slice(0, 3).join(' or ')}?)` : '';
}

/** The default label of a rule: the last named key of its path (`email`), else the scope. */
function defaultLabel(pattern: PathPattern): string {
  for (let i = pattern.segments.length - 1; i >= 0; i--) {
    const segment = pattern.segments[i]!;
    if ('key' in segment) {
      const label = segment.key
        .toLowerCase()
        .replace(/[^a-z0-9_.-]/g, '_')
        .slice(0, 40);
      if (label !== '') return label;
    }
  }
  return pattern.kind;
}

/**
 * Checks a policy written as JSON and returns it ready for use. Detectors left out keep the
 * default: secrets `mask`, PII `off`; the group keys `secrets` and `pii` set a whole group, and
 * a detector's own entry wins over its group's. Throws PolicyError naming the offending field.
 */
export function parsePolicy(input: unknown, file?: string, within = ''): Policy {
  const fail = (field: string, problem: string): never => {
    throw new PolicyError([within, field].filter((part) => part !== '').join('.'), problem, file);
  };
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    fail(
      '',
      `must be a JSON object such as {"version": 1, "detectors": {"email": "mask"}}, got ${describe(input)}`,
    );
  }
  const record = input as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!['version', 'detectors', 'rules', 'limits', '$schema', 'description'].includes(key)) {
      fail(key, `unknown key; a policy has version, detectors, rules and limits`);
    }
  }
  if (record.version === undefined) fail('version', `is missing; write "version": ${POLICY_VERSION}`);
  if (typeof record.version !== 'number' || !Number.isInteger(record.version) || record.version < 1) {
    fail('version', `must be the number ${POLICY_VERSION}, got ${describe(record.version)}`);
  }
  if (record.version !== POLICY_VERSION) {
    fail(
      'version',
      `policy version ${record.version} needs a newer @rewind/redact (this one reads version ${POLICY_VERSION})`,
    );
  }

  const detectors: Record<string, DetectorSetting> = {};
  for (const detector of DETECTORS)
    detectors[detector.name] = detector.category === 'secret' ? 'mask' : 'off';
  if (record.detectors !== undefined) {
    if (
      typeof record.detectors !== 'object' ||
      record.detectors === null ||
      Array.isArray(record.detectors)
    ) {
      fail(
        'detectors',
        `must be an object of detector name to action, e.g. {"email": "hash"}, got ${describe(record.detectors)}`,
      );
    }
    const entries = Object.entries(record.detectors as Record<string, unknown>);
    for (const [name, setting] of entries) {
      if (!Object.hasOwn(CATEGORY_KEYS, name) && !DETECTOR_NAMES.includes(name)) {
        fail(
          `detectors.${name}`,
          `no such detector${nearest(name, DETECTOR_NAMES)}; known: secrets, pii, ${DETECTOR_NAMES.join(', ')}`,
        );
      }
      if (!SETTINGS.includes(setting as DetectorSetting)) {
        fail(`detectors.${name}`, `must be one of ${SETTINGS.join(', ')}, got ${describe(setting)}`);
      }
    }
    // Groups first, then single detectors, whatever the order in the file.
    for (const [name, setting] of entries) {
      const category = CATEGORY_KEYS[name];
      if (category === undefined) continue;
      for (const detector of DETECTORS)
        if (detector.category === category) detectors[detector.name] = setting as DetectorSetting;
    }
    for (const [name, setting] of entries)
      if (!Object.hasOwn(CATEGORY_KEYS, name)) detectors[name] = setting as DetectorSetting;
  }

  const rules: Rule[] = [];
  if (record.rules !== undefined) {
    if (!Array.isArray(record.rules))
      fail('rules', `must be an array of {"path": …, "action": …}, got ${describe(record.rules)}`);
    for (const [index, rule] of (record.rules as unknown[]).entries()) {
      const at = `rules[${index}]`;
      if (typeof rule !== 'object' || rule === null || Array.isArray(rule)) {
        fail(at, `must be an object such as {"path": "run.input", "action": "mask"}, got ${describe(rule)}`);
      }
      const { path, action, label, ...rest } = rule as Record<string, unknown>;
      const extra = Object.keys(rest)[0];
      if (extra !== undefined) fail(`${at}.${extra}`, 'unknown key; a rule has path, action and label');
      if (typeof path !== 'string')
        fail(
          `${at}.path`,
          `must be a string such as "tool:crm.lookup.response.output.email", got ${describe(path)}`,
        );
      let pattern: PathPattern;
      try {
        pattern = parsePathPattern(path as string);
      } catch (error) {
        if (!(error instanceof PathSyntaxError)) throw error;
        throw new PolicyError(
          [within, `${at}.path`].filter((part) => part !== '').join('.'),
          `${JSON.stringify(path)} ${error.message}`,
          file,
        );
      }
      if (!ACTIONS.includes(action as Action)) {
        fail(`${at}.action`, `must be one of ${ACTIONS.join(', ')}, got ${describe(action)}`);
      }
      if (label !== undefined && (typeof label !== 'string' || !LABEL.test(label))) {
        fail(`${at}.label`, `must be 1–40 characters of a-z, 0-9, _ . -, got ${describe(label)}`);
      }
      rules.push({
        path: pattern,
        action: action as Action,
        label: (label as string | undefined) ?? defaultLabel(pattern),
      });
    }
  }

  const limits: Limits = { ...DEFAULT_LIMITS };
  if (record.limits !== undefined) {
    if (typeof record.limits !== 'object' || record.limits === null || Array.isArray(record.limits)) {
      fail('limits', `must be an object such as {"maxDepth": 64}, got ${describe(record.limits)}`);
    }
    for (const [name, value] of Object.entries(record.limits as Record<string, unknown>)) {
      if (!Object.hasOwn(DEFAULT_LIMITS, name))
        fail(`limits.${name}`, `unknown limit; known: ${Object.keys(DEFAULT_LIMITS).join(', ')}`);
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
        fail(`limits.${name}`, `must be a whole number ≥ 1, got ${describe(value)}`);
      }
      limits[name as keyof Limits] = value as number;
    }
  }
  return { version: POLICY_VERSION, detectors, rules, limits };
}

/** The policy in force when none is configured: every secret detector masks, PII is off. */
export function defaultPolicy(): Policy {
  return parsePolicy({ version: POLICY_VERSION });
}

export type PolicySource = 'flag' | 'policy-file' | 'config' | 'default';

export interface LoadedPolicy {
  policy: Policy;
  source: PolicySource;
  /** The file it was read from, when one. */
  file: string | undefined;
}

function readJson(file: string): unknown | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new PolicyError('', `cannot be read (${(error as Error).message})`, file, { cause: error });
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new PolicyError('', `is not valid JSON (${(error as Error).message})`, file, { cause: error });
  }
}

/**
 * Finds the policy in force, the first of: `file` (the CLI's --policy, the SDK's `policy`
 * option given as a path), `rewind.policy.json` in `cwd`, the "policy" of `rewind.config.json`
 * in `cwd` (an object, or a path relative to `cwd`), the default policy.
 */
export function loadPolicy(options: { file?: string | undefined; cwd?: string } = {}): LoadedPolicy {
  const cwd = options.cwd ?? process.cwd();
  if (options.file !== undefined) {
    const file = isAbsolute(options.file) ? options.file : resolve(cwd, options.file);
    const value = readJson(file);
    if (value === undefined)
      throw new PolicyError('', 'does not exist; check the path given for the policy', file);
    return { policy: parsePolicy(value, file), source: 'flag', file };
  }
  const policyFile = join(cwd, POLICY_FILE_NAME);
  const value = readJson(policyFile);
  if (value !== undefined)
    return { policy: parsePolicy(value, policyFile), source: 'policy-file', file: policyFile };
  const configFile = join(cwd, CONFIG_FILE_NAME);
  const config = readJson(configFile);
  if (config !== undefined && typeof config === 'object' && config !== null && 'policy' in config) {
    const inline = (config as { policy: unknown }).policy;
    if (typeof inline === 'string') {
      const file = resolve(cwd, inline);
      const referenced = readJson(file);
      if (referenced === undefined)
        throw new PolicyError('policy', `names ${file}, which does not exist`, configFile);
      return { policy: parsePolicy(referenced, file), source: 'config', file };
    }
    return { policy: parsePolicy(inline, configFile, 'policy'), source: 'config', file: configFile };
  }
  return { policy: defaultPolicy(), source: 'default', file: undefined };
}

/** Whether the policy needs the project key (some detector or rule hashes or seals). */
export function policyNeedsKey(policy: Policy): boolean {
  const keyed = (action: DetectorSetting) => action === 'hash' || action === 'seal';
  return Object.values(policy.detectors).some(keyed) || policy.rules.some((rule) => keyed(rule.action));
}
