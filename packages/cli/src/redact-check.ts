import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  createRedactor,
  type Finding,
  KEY_ENV,
  type LoadedPolicy,
  loadPolicy,
  PolicyError,
  parseLocation,
  policyNeedsKey,
  RedactionKeyError,
} from '@rewind/redact';
import { dataError, usageError } from './errors.ts';

// `rewind redact-check <file|->`: what the redaction policy in force would redact in a file, and
// why. For tuning a policy; it writes nothing anywhere.

export interface RedactCheckOptions {
  input: string;
  policy: string | undefined;
  as: string | undefined;
  at: string | undefined;
  show: boolean;
  env: Record<string, string | undefined>;
  cwd: string;
  readStdin: () => Promise<string>;
}

export interface RedactCheckFindingJson {
  detector: string;
  action: string;
  /** JSON input: the field's path. */
  path?: string;
  /** Text input, or within the string at `path`: 1-based line and column of the start. */
  line?: number;
  column?: number;
  start?: number;
  end?: number;
  rule?: string;
  reason?: string;
  inKey?: true;
}

export interface RedactCheckJson {
  policy: { source: LoadedPolicy['source']; file: string | null };
  input: { name: string; kind: 'text' | 'json' };
  findings: RedactCheckFindingJson[];
  /** The input as the policy would store it (JSON input: the redacted value). */
  output: unknown;
  /** Set when hash or seal used a throwaway key because REWIND_PROJECT_KEY is not set. */
  throwawayKey: boolean;
}

function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return { line, column: offset - lineStart + 1 };
}

function valueAt(root: unknown, path: string, base: string): unknown {
  // Findings inside a string: walk to it to turn offsets into line:column. Paths are ours.
  let node = root;
  const rest = path.slice(base.length);
  for (const match of rest.matchAll(/\.([A-Za-z_$][\w$-]*)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]/g)) {
    const key = match[1] ?? (match[2] !== undefined ? Number(match[2]) : (JSON.parse(match[3]!) as string));
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string | number, unknown>)[key];
  }
  return node;
}

export async function redactCheck(options: RedactCheckOptions): Promise<RedactCheckJson> {
  let loaded: LoadedPolicy;
  try {
    loaded = loadPolicy({ file: options.policy, cwd: options.cwd });
  } catch (error) {
    if (PolicyError.isInstance(error))
      throw usageError(`${error.message} — fix the policy and try again (see docs/redaction.md)`);
    throw error;
  }
  let text: string;
  const name = options.input === '-' ? '<stdin>' : options.input;
  if (options.input === '-') text = await options.readStdin();
  else {
    try {
      text = readFileSync(resolve(options.cwd, options.input), 'utf8');
    } catch (error) {
      throw dataError(
        `cannot read ${options.input} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}) — pass a file or - for standard input`,
      );
    }
  }
  if (options.as !== undefined && options.as !== 'text' && options.as !== 'json') {
    throw usageError(`--as must be text or json, got '${options.as}' — see \`rewind redact-check --help\``);
  }
  let parsed: unknown;
  let kind: 'text' | 'json' = 'text';
  if (options.as !== 'text') {
    try {
      parsed = JSON.parse(text);
      if (options.as === 'json' || (typeof parsed === 'object' && parsed !== null)) kind = 'json';
    } catch (error) {
      if (options.as === 'json')
        throw usageError(
          `${name} is not valid JSON (${(error as Error).message}); drop --as json to check it as text`,
        );
    }
  }

  const throwawayKey = options.env[KEY_ENV] === undefined && policyNeedsKey(loaded.policy);
  let redactor: ReturnType<typeof createRedactor>;
  try {
    redactor = createRedactor(loaded.policy, {
      env: options.env,
      ...(throwawayKey && { key: randomBytes(32) }),
    });
  } catch (error) {
    if (RedactionKeyError.isInstance(error)) throw usageError(error.message);
    throw error;
  }
  const at = options.at ?? '';
  try {
    parseLocation(at);
  } catch (error) {
    throw usageError(
      `--at '${at}': ${(error as Error).message} — write a place such as run.input or tool:crm.lookup.response`,
    );
  }
  const result: { value: unknown; findings: Finding[] } =
    kind === 'json' ? redactor.redactValue(parsed, at) : redactor.redactText(text, at);
  const findings = result.findings.map((finding): RedactCheckFindingJson => {
    const out: RedactCheckFindingJson = { detector: finding.detector, action: finding.action };
    if (kind === 'json') out.path = finding.path;
    if (finding.start !== undefined && finding.end !== undefined) {
      const within = kind === 'json' ? valueAt(parsed, finding.path, at) : text;
      if (typeof within === 'string' && !finding.inKey) Object.assign(out, lineColumn(within, finding.start));
      out.start = finding.start;
      out.end = finding.end;
    }
    if (finding.rule !== undefined) out.rule = finding.rule;
    if (finding.reason !== undefined) out.reason = finding.reason;
    if (finding.inKey) out.inKey = true;
    return out;
  });
  return {
    policy: { source: loaded.source, file: loaded.file ?? null },
    input: { name, kind },
    findings,
    output: result.value,
    throwawayKey,
  };
}

const SOURCES: Record<LoadedPolicy['source'], string> = {
  flag: '--policy',
  'policy-file': 'rewind.policy.json',
  config: '"policy" in rewind.config.json',
  default: 'the built-in default: every secret detector masks, PII detectors are off',
};

export function renderRedactCheck(report: RedactCheckJson, show: boolean): string[] {
  const lines = [
    `policy: ${report.policy.file ?? SOURCES[report.policy.source]}${report.policy.file !== null ? ` (${SOURCES[report.policy.source]})` : ''}`,
  ];
  const count = report.findings.length;
  lines.push(
    `${report.input.name} (${report.input.kind}): ${count === 0 ? 'nothing would be redacted' : `${count} finding${count === 1 ? '' : 's'}`}`,
  );
  const rows = report.findings.map((finding) => {
    const where = [
      finding.path,
      finding.line !== undefined ? `${finding.line}:${finding.column}` : undefined,
      finding.inKey ? '(key)' : undefined,
    ]
      .filter((part) => part !== undefined && part !== '')
      .join(' ');
    const why =
      finding.detector === 'rule'
        ? `rule ${finding.rule}`
        : finding.detector === 'scan_failed'
          ? `could not be scanned (${finding.reason}): replaced`
          : `detector ${finding.detector}`;
    return [where === '' ? '(value)' : where, finding.action, why];
  });
  const width = Math.max(0, ...rows.map((row) => row[0]!.length)) + 2;
  for (const [where, action, why] of rows) lines.push(`  ${where!.padEnd(width)}${action!.padEnd(6)}${why}`);
  if (report.throwawayKey) {
    lines.push('', `note: ${KEY_ENV} is not set, so pseudonyms and sealed values use a throwaway key`);
  }
  if (show) {
    lines.push('', '--- redacted ---');
    lines.push(typeof report.output === 'string' ? report.output : JSON.stringify(report.output, null, 2));
  }
  return lines;
}
