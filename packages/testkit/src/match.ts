// Rule matching, and the readable explanation of why a request matched no rule.
import type { Api, Conversation, Matcher, Reply, Rule, TextPattern } from './types.ts';

function showPattern(p: TextPattern | string | RegExp): string {
  return p instanceof RegExp ? String(p) : JSON.stringify(p);
}

function clip(text: string, max = 80): string {
  const flat = text.replace(/\s+/g, ' ');
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

function testPattern(pattern: TextPattern, value: string | undefined): boolean {
  if (value === undefined) return false;
  if (pattern instanceof RegExp) {
    pattern.lastIndex = 0;
    return pattern.test(value);
  }
  return value.includes(pattern);
}

/** Why `matcher` rejects `conversation`, or undefined when it matches. */
export function mismatch(matcher: Matcher | undefined, c: Conversation): string | undefined {
  if (matcher === undefined) return undefined;
  if (matcher.api !== undefined) {
    const apis: readonly Api[] = typeof matcher.api === 'string' ? [matcher.api] : matcher.api;
    if (!apis.includes(c.api)) return `api is ${c.api}, wanted ${apis.join(' | ')}`;
  }
  if (matcher.model !== undefined) {
    const ok =
      matcher.model instanceof RegExp ? testPattern(matcher.model, c.model) : matcher.model === c.model;
    if (!ok) return `model is ${JSON.stringify(c.model)}, wanted ${showPattern(matcher.model)}`;
  }
  if (matcher.stream !== undefined && matcher.stream !== c.stream)
    return `stream is ${c.stream}, wanted ${matcher.stream}`;
  if (matcher.turn !== undefined && matcher.turn !== c.turn)
    return `turn is ${c.turn}, wanted ${matcher.turn}`;
  if (matcher.lastUserText !== undefined && !testPattern(matcher.lastUserText, c.lastUserText))
    return c.lastUserText === undefined
      ? `there is no user text, wanted ${showPattern(matcher.lastUserText)}`
      : `last user text ${JSON.stringify(clip(c.lastUserText))} does not match ${showPattern(matcher.lastUserText)}`;
  if (matcher.systemText !== undefined && !testPattern(matcher.systemText, c.system))
    return `system text ${JSON.stringify(clip(c.system))} does not match ${showPattern(matcher.systemText)}`;
  if (matcher.hasToolResult !== undefined) {
    const trailing = c.trailingToolResults;
    if (matcher.hasToolResult === true && trailing.length === 0)
      return 'the conversation does not end with tool results';
    if (matcher.hasToolResult === false && trailing.length > 0)
      return 'the conversation ends with tool results';
    if (typeof matcher.hasToolResult === 'string' && !trailing.some((r) => r.name === matcher.hasToolResult))
      return `the conversation does not end with a result of tool ${JSON.stringify(matcher.hasToolResult)}`;
  }
  if (matcher.predicate !== undefined && !matcher.predicate(c)) return 'the predicate returned false';
  return undefined;
}

/** A short description of a request for error messages. */
export function describeConversation(seq: number, c: Conversation): string {
  const bits = [`#${seq} ${c.api}`, `model ${JSON.stringify(c.model)}`, `turn ${c.turn}`];
  if (c.stream) bits.push('streaming');
  bits.push(
    c.lastUserText === undefined ? 'no user text' : `last user text ${JSON.stringify(clip(c.lastUserText))}`,
  );
  if (c.trailingToolResults.length > 0)
    bits.push(
      `ending with tool results of ${c.trailingToolResults.map((r) => r.name ?? r.toolCallId).join(', ')}`,
    );
  return bits.join(', ');
}

export interface RuleState {
  rule: Rule;
  used: number;
}

export interface MatchResult {
  index: number;
  state: RuleState;
}

/** The first rule that matches and has uses left. */
export function findRule(states: readonly RuleState[], c: Conversation): MatchResult | undefined {
  for (const [index, state] of states.entries()) {
    if (state.rule.times !== undefined && state.used >= state.rule.times) continue;
    if (mismatch(state.rule.when, c) === undefined) return { index, state };
  }
  return undefined;
}

/** The message sent back when no rule matched: the request and why each rule did not apply. */
export function explainNoMatch(seq: number, states: readonly RuleState[], c: Conversation): string {
  const lines = [`scripted provider: request ${describeConversation(seq, c)} matched no rule.`];
  if (states.length === 0) lines.push('There are no rules (call provider.script([...]) first).');
  for (const [index, state] of states.entries()) {
    const label = `rule ${index}${state.rule.name ? ` (${state.rule.name})` : ''}`;
    if (state.rule.times !== undefined && state.used >= state.rule.times)
      lines.push(`${label}: used up (${state.used} of ${state.rule.times} times)`);
    else lines.push(`${label}: ${mismatch(state.rule.when, c) ?? 'matches'}`);
  }
  return lines.join('\n');
}

/**
 * Rules that answer with `replies` in order, one request each (`times: 1`), e.g. a 429 and
 * then a success. `when` (optional) is applied to every one of them.
 */
export function scriptedReplies(replies: readonly Reply[], when?: Matcher): Rule[] {
  return replies.map((reply, i) => ({
    name: `reply ${i + 1} of ${replies.length}`,
    ...(when ? { when } : {}),
    reply,
    times: 1,
  }));
}
