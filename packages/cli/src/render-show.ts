import type { ErrorInfo } from '@rewind/schema';
import type { StepRecord } from '@rewind/store';
import {
  compactJson,
  durationBetween,
  formatDuration,
  formatTime,
  oneLine,
  padEnd,
  padStart,
  plural,
  type Style,
  styleStatus,
  truncate,
  visibleLength,
} from './format.ts';
import type { RunView, StepView } from './run-view.ts';

// `rewind show` for people: a header, then the timeline as a tree (children under their parent
// step, in seq order), one line per step: seq, tree glyphs, kind and name, status, label,
// duration, and a one-line preview of the payloads.

export interface RenderOptions {
  style: Style;
  /** Terminal width when stdout is a terminal: lines are cut to it. Otherwise previews are cut to 100 characters. */
  columns?: number | undefined;
}

const PREVIEW_WIDTH = 100;
const MAX_STEP_COLUMN = 56;

interface TreeLine {
  step: StepView;
  /** Glyphs before the step: `│  ├─ `. */
  prefix: string;
}

/** Orders steps depth-first (children by seq under their parent); steps whose parent is not in the timeline become roots. */
export function timelineTree(steps: readonly StepView[]): { lines: TreeLine[]; orphans: number } {
  const ids = new Set(steps.map((step) => step.record.stepId));
  const children = new Map<string | null, StepView[]>();
  let orphans = 0;
  for (const step of steps) {
    let parent = step.record.parentStepId;
    if (parent !== null && !ids.has(parent)) {
      parent = null;
      orphans++;
    }
    const list = children.get(parent) ?? [];
    list.push(step);
    children.set(parent, list);
  }
  for (const list of children.values()) list.sort((a, b) => a.record.seq - b.record.seq);
  const lines: TreeLine[] = [];
  const seen = new Set<string>();
  const walk = (parent: string | null, indent: string): void => {
    const list = children.get(parent) ?? [];
    list.forEach((step, index) => {
      if (seen.has(step.record.stepId)) return; // a cycle in corrupt data: show each step once
      seen.add(step.record.stepId);
      const last = index === list.length - 1;
      lines.push({ step, prefix: `${indent}${last ? '└─ ' : '├─ '}` });
      walk(step.record.stepId, `${indent}${last ? '   ' : '│  '}`);
    });
  };
  walk(null, '');
  // Steps caught in a parent cycle are never reached from a root: list them at the end.
  for (const step of steps) if (!seen.has(step.record.stepId)) lines.push({ step, prefix: '?  ' });
  return { lines, orphans };
}

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

/** The text of a message's content: a string, or its text parts joined. */
function messageText(content: unknown): string | undefined {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return undefined;
  const texts = content
    .map((part) => record(part))
    .filter((part) => part !== undefined && typeof part.text === 'string')
    .map((part) => part!.text as string);
  return texts.length === 0 ? undefined : texts.join(' ');
}

function quote(text: string): string {
  return JSON.stringify(oneLine(text));
}

function callsText(calls: unknown): string | undefined {
  if (!Array.isArray(calls) || calls.length === 0) return undefined;
  return calls
    .map((call) => {
      const c = record(call);
      return `${String(c?.name ?? '?')}(${compactJson(c?.arguments ?? {})})`;
    })
    .join(', ');
}

function errorText(error: ErrorInfo | null): string {
  if (error === null) return 'failed';
  return `✗ ${error.type}${error.status === undefined ? '' : ` ${error.status}`}: ${error.message}`;
}

function modelPreview(record_: StepRecord, request: unknown, response: unknown): string {
  const message = record(record(response)?.message);
  if (message !== undefined) {
    const calls = callsText(message.toolCalls);
    const text = messageText(message.content);
    const streamed = record_.stream === null ? '' : `streamed ${plural(record_.stream.chunks, 'chunk')}: `;
    if (calls !== undefined)
      return `→ ${text === undefined || text === '' ? '' : `${quote(text)} + `}${calls}`;
    if (text !== undefined) return `${streamed}→ ${quote(text)}`;
  }
  const messages = record(request)?.messages;
  if (Array.isArray(messages)) {
    const lastUser = [...messages].reverse().find((m) => record(m)?.role === 'user');
    const text = messageText(record(lastUser)?.content);
    if (text !== undefined) return `user: ${quote(text)}`;
    const last = record(messages.at(-1));
    if (last !== undefined) return `${String(last.role)}: ${compactJson(last.content)}`;
  }
  return '';
}

function toolPreview(step: StepView): string {
  const request = record(step.request);
  const name = typeof request?.name === 'string' ? request.name : step.record.name;
  const call = step.request === null ? `${name}(…)` : `${name}(${compactJson(request?.arguments ?? {})})`;
  if (step.record.status === 'error') return `${call} ${errorText(step.record.error)}`;
  if (step.record.status === 'running') return call;
  const response = record(step.response);
  return `${call} → ${step.response === null ? '(payload missing)' : compactJson(response !== undefined && 'output' in response ? response.output : step.response)}`;
}

function retrieverPreview(step: StepView): string {
  const query = record(step.request)?.query;
  const head = typeof query === 'string' ? quote(query) : compactJson(step.request);
  if (step.record.status === 'error') return `${head} ${errorText(step.record.error)}`;
  if (step.record.status === 'running') return head;
  const documents = record(step.response)?.documents;
  return `${head} → ${Array.isArray(documents) ? plural(documents.length, 'doc') : '(payload missing)'}`;
}

function chainPreview(step: StepView): string {
  const request = record(step.request);
  const input = compactJson(request !== undefined && 'input' in request ? request.input : step.request);
  if (step.record.status === 'error') return `${input} ${errorText(step.record.error)}`;
  if (step.record.status === 'running') return input;
  const response = record(step.response);
  return `${input} → ${compactJson(response !== undefined && 'output' in response ? response.output : step.response)}`;
}

/** A one-line summary of a step's payloads, by kind. */
export function stepPreview(step: StepView): string {
  const { record: r } = step;
  let text: string;
  switch (r.kind) {
    case 'model':
      text = modelPreview(r, step.request, step.response);
      if (r.status === 'error') text = `${errorText(r.error)}${text === '' ? '' : ` (${text})`}`;
      break;
    case 'tool':
      text = toolPreview(step);
      break;
    case 'retriever':
      text = retrieverPreview(step);
      break;
    case 'chain':
      text = chainPreview(step);
      break;
    default:
      text = compactJson(step.request);
  }
  if (step.request === null && step.response === null && r.status !== 'error') text = '(payload missing)';
  return oneLine(text);
}

function stepDuration(record_: StepRecord): string {
  const ms = durationBetween(record_.startedAt, record_.endedAt);
  return ms === undefined ? '…' : formatDuration(ms);
}

function kindStyle(style: Style, kind: string): (text: string) => string {
  switch (kind) {
    case 'model':
      return style.magenta;
    case 'tool':
      return style.blue;
    case 'retriever':
      return style.cyan;
    default:
      return style.bold;
  }
}

function labelsText(labels: Partial<Record<string, number>>): string {
  const entries = Object.entries(labels).filter(([, count]) => (count ?? 0) > 0);
  return entries.length === 0 ? 'none' : entries.map(([label, count]) => `${label} ${count}`).join(', ');
}

function header(view: RunView, options: RenderOptions): string[] {
  const { run } = view;
  const { style } = options;
  const width = options.columns ?? PREVIEW_WIDTH + 10;
  const duration = durationBetween(run.startedAt, run.endedAt);
  const errors = plural(run.errorCount, 'error');
  const facts: Array<[plain: string, styled: string]> = [
    [`started ${formatTime(run.startedAt)}`, ''],
    [
      `duration ${duration === undefined ? (run.status === 'incomplete' ? 'unfinished' : '?') : formatDuration(duration)}`,
      '',
    ],
    [plural(run.stepCount, 'step'), ''],
    [errors, run.errorCount > 0 ? style.red(errors) : errors],
    [`labels: ${labelsText(run.labels)}`, ''],
  ];
  const lines = [
    `${style.bold(truncate(run.agent ?? '(agent unknown: run.started not received)', 48))}  ${styleStatus(style, run.status)}  ${style.dim('run')} ${run.id}`,
  ];
  // The facts, joined by ` · `, wrapped to the width.
  let plainLine = '';
  let styledLine = '';
  for (const [text, styled] of facts) {
    if (plainLine !== '' && visibleLength(plainLine) + 3 + visibleLength(text) > width) {
      lines.push(styledLine);
      [plainLine, styledLine] = ['', ''];
    }
    styledLine += `${plainLine === '' ? '' : style.dim(' · ')}${styled === '' ? text : styled}`;
    plainLine += `${plainLine === '' ? '' : ' · '}${text}`;
  }
  lines.push(styledLine);
  if (run.replayOf !== undefined)
    lines.push(truncate(`replay of ${run.replayOf.runId} (${run.replayOf.mode} mode)`, width));
  if (run.forkOf !== undefined) {
    const then = run.forkOf.edit.then === undefined ? '' : `, then ${run.forkOf.edit.then}`;
    lines.push(truncate(`fork of ${run.forkOf.runId} at step ${run.forkOf.atSeq}${then}`, width));
  }
  const cut = (text: string): string => truncate(oneLine(text), Math.max(20, width - 8));
  lines.push(`${style.dim('input ')}  ${cut(compactJson(view.input))}`);
  if (run.status === 'ok') lines.push(`${style.dim('output')}  ${cut(compactJson(view.output))}`);
  if (run.error !== null) lines.push(`${style.dim('error ')}  ${style.red(cut(errorText(run.error)))}`);
  if (run.status === 'incomplete') {
    lines.push(
      style.yellow(
        truncate('incomplete: run.finished has not arrived (still running, or the process died)', width),
      ),
    );
  }
  return lines;
}

/** The whole `rewind show` text, lines without trailing newlines. */
export function renderShow(view: RunView, options: RenderOptions): string[] {
  const { style } = options;
  const lines = header(view, options);
  lines.push('');
  if (view.steps.length === 0) {
    lines.push(style.dim('no steps recorded'));
    return lines;
  }
  const { lines: tree, orphans } = timelineTree(view.steps);
  const seqWidth = Math.max(3, String(Math.max(...view.steps.map((s) => s.record.seq))).length);
  const stepTexts = tree.map(({ step, prefix }) => `${prefix}${step.record.kind} ${step.record.name}`);
  const stepWidth = Math.min(MAX_STEP_COLUMN, Math.max(4, ...stepTexts.map(visibleLength)));
  const labelWidth = Math.max(5, ...view.steps.map((s) => (s.record.label ?? '-').length));
  const durations = tree.map(({ step }) => stepDuration(step.record));
  const durationWidth = Math.max(8, ...durations.map(visibleLength));
  const fixedWidth = seqWidth + 2 + stepWidth + 2 + 7 + 2 + labelWidth + 2 + durationWidth + 2;
  const previewWidth =
    options.columns === undefined ? PREVIEW_WIDTH : Math.max(10, options.columns - fixedWidth);

  lines.push(
    style.dim(
      [
        padStart('seq', seqWidth),
        padEnd('step', stepWidth),
        padEnd('status', 7),
        padEnd('label', labelWidth),
        padStart('duration', durationWidth),
        'preview',
      ].join('  '),
    ),
  );
  tree.forEach(({ step, prefix }, index) => {
    const r = step.record;
    const stepText = truncate(stepTexts[index]!, stepWidth);
    // Colour the parts of the (padded, possibly cut) step cell separately.
    const glyphs = stepText.slice(0, prefix.length);
    const rest = stepText.slice(prefix.length);
    const kindEnd = rest.indexOf(' ');
    const kind = kindEnd === -1 ? rest : rest.slice(0, kindEnd);
    const name = kindEnd === -1 ? '' : rest.slice(kindEnd);
    const stepCell =
      style.dim(glyphs) +
      kindStyle(style, r.kind)(kind) +
      name +
      ' '.repeat(stepWidth - visibleLength(stepText));
    const preview = truncate(stepPreview(step), previewWidth);
    lines.push(
      [
        style.dim(padStart(String(r.seq), seqWidth)),
        stepCell,
        styleStatus(style, r.status) + ' '.repeat(7 - r.status.length),
        padEnd(r.label ?? '-', labelWidth),
        padStart(durations[index]!, durationWidth),
        r.status === 'error' ? style.red(preview) : preview,
      ]
        .join('  ')
        .trimEnd(),
    );
  });
  if (orphans > 0) {
    lines.push('');
    lines.push(
      style.yellow(
        `${plural(orphans, 'step')} whose parent step has not arrived ${orphans === 1 ? 'is' : 'are'} shown at the top level`,
      ),
    );
  }
  return lines;
}
