import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { dataError, usageError } from './errors.ts';

// Where replay finds the agent code (SPEC §9): `rewind.config.json` (or `rewind.config.ts`) in
// the working directory maps agent names to modules, `{"agents": {"support-bot":
// "./src/agent.ts#supportBot"}}`; paths are relative to the working directory.

export type AgentFunction = (...args: never[]) => unknown;

interface AgentMap {
  file: string;
  agents: Record<string, unknown>;
}

async function readAgentMap(cwd: string): Promise<AgentMap | undefined> {
  const json = join(cwd, 'rewind.config.json');
  if (existsSync(json)) {
    let config: unknown;
    try {
      config = JSON.parse(readFileSync(json, 'utf8'));
    } catch (error) {
      throw usageError(
        `${json} is not valid JSON (${(error as Error).message}) — fix the file and try again`,
      );
    }
    const agents = (config as { agents?: unknown } | null)?.agents;
    if (agents !== undefined) {
      if (typeof agents !== 'object' || agents === null || Array.isArray(agents))
        throw usageError(`${json}: "agents" must be an object of agent name → "./module.ts#export"`);
      return { file: json, agents: agents as Record<string, unknown> };
    }
  }
  const ts = join(cwd, 'rewind.config.ts');
  if (existsSync(ts)) {
    let module: { default?: { agents?: unknown }; agents?: unknown };
    try {
      module = (await import(pathToFileURL(ts).href)) as typeof module;
    } catch (error) {
      throw dataError(`cannot load ${ts}: ${(error as Error).message}`);
    }
    const agents = module.default?.agents ?? module.agents;
    if (typeof agents === 'object' && agents !== null && !Array.isArray(agents))
      return { file: ts, agents: agents as Record<string, unknown> };
    throw usageError(
      `${ts} must export {agents: {"<agent name>": "./module.ts#export"}} (as default or as \`agents\`)`,
    );
  }
  return undefined;
}

/** Imports the agent named `agent` as the config maps it. */
export async function loadAgent(agent: string, cwd: string): Promise<AgentFunction> {
  const map = await readAgentMap(cwd);
  const example = `{"agents": {"${agent}": "./src/agent.ts#${agent.replace(/[^A-Za-z0-9_$]/g, '') || 'agent'}"}}`;
  if (map === undefined)
    throw usageError(
      `to replay, Rewind runs the agent's code: map agent "${agent}" to its module in ${join(cwd, 'rewind.config.json')}, e.g. ${example}`,
    );
  const spec = map.agents[agent];
  if (spec === undefined) {
    const known = Object.keys(map.agents);
    throw usageError(
      `${map.file} has no agent "${agent}" (the recorded run's agent)${known.length > 0 ? `; it maps: ${known.join(', ')}` : ''} — add e.g. ${example}`,
    );
  }
  if (typeof spec !== 'string' || !/^[^#]+#[A-Za-z_$][\w$]*$/.test(spec))
    throw usageError(
      `${map.file}: agent "${agent}" must map to "./path/module.ts#exportName", not ${JSON.stringify(spec)}`,
    );
  const [path, exportName] = spec.split('#') as [string, string];
  const file = isAbsolute(path) ? path : resolve(cwd, path);
  if (!existsSync(file))
    throw dataError(`agent "${agent}": module ${file} does not exist (from ${map.file})`);
  let module: Record<string, unknown>;
  try {
    module = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (error) {
    throw dataError(`agent "${agent}": cannot import ${file}: ${(error as Error).message}`);
  }
  const fn = module[exportName];
  if (typeof fn !== 'function') {
    const exported = Object.keys(module).filter((key) => typeof module[key] === 'function');
    throw dataError(
      `agent "${agent}": ${file} has no exported function "${exportName}"${exported.length > 0 ? ` (it exports: ${exported.join(', ')})` : ''}`,
    );
  }
  return fn as AgentFunction;
}
