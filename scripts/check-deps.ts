// Enforces the one-way package dependencies of docs/architecture.md: every import of an
// @rewind/* package (in package.json and in source) must be on the allow-list below, and
// no package may reach into another's files by relative path or deep import.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const ALLOWED: Record<string, string[]> = {
  schema: [],
  store: ['schema'],
  redact: ['schema'],
  sdk: ['schema', 'store', 'redact'],
  diff: ['schema'],
  testkit: ['schema', 'sdk'],
  server: ['schema', 'store', 'diff', 'sdk', 'redact'],
  cli: ['schema', 'store', 'diff', 'sdk', 'server', 'redact'],
  web: [],
};

// Test-only code (tests, conformance suites, test helpers) may also use the testkit, which is a
// development dependency: it never ships inside a package's runtime code.
const TEST_ONLY = /(\.test\.ts$|\/conformance\/|\/testing\/)/;
const TEST_ONLY_ALLOWED = ['testkit'];

const root = new URL('..', import.meta.url).pathname;
const problems: string[] = [];

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir)) {
    if (entry === 'node_modules' || entry === 'dist') continue;
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) out.push(...sourceFiles(path));
    else if (/\.(ts|tsx|js|mjs)$/.test(entry)) out.push(path);
  }
  return out;
}

for (const name of readdirSync(join(root, 'packages'))) {
  const dir = join(root, 'packages', name);
  let manifest: {
    name?: string;
    dependencies?: Record<string, string>;
    peerDependencies?: Record<string, string>;
  };
  try {
    manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  } catch {
    continue;
  }
  const allowed = ALLOWED[name];
  if (allowed === undefined) {
    problems.push(
      `packages/${name}: not in the allow-list of scripts/check-deps.ts; add it with its allowed dependencies`,
    );
    continue;
  }
  const declared = Object.keys({ ...manifest.dependencies, ...manifest.peerDependencies });
  for (const dep of declared) {
    const target = /^@rewind\/(.+)$/.exec(dep)?.[1];
    if (target !== undefined && !allowed.includes(target))
      problems.push(
        `packages/${name}/package.json depends on ${dep}, but ${name} may only depend on: ${allowed.join(', ') || 'nothing of ours'}`,
      );
  }
  for (const file of sourceFiles(join(dir, 'src'))) {
    const text = readFileSync(file, 'utf8');
    const where = relative(root, file);
    for (const match of text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)['"]([^'"]+)['"]/g)) {
      const spec = match[1]!;
      const ours = /^@rewind\/([^/]+)(\/.*)?$/.exec(spec);
      if (ours !== null) {
        const target = ours[1]!;
        if (TEST_ONLY.test(where) && TEST_ONLY_ALLOWED.includes(target)) continue;
        if (target !== name && !allowed.includes(target))
          problems.push(`${where} imports ${spec}: ${name} may not depend on ${target}`);
        else if (target !== name && !declared.includes(`@rewind/${target}`))
          problems.push(
            `${where} imports ${spec} but packages/${name}/package.json does not declare @rewind/${target}`,
          );
      } else if (spec.startsWith('.') && relative(dir, join(file, '..', spec)).startsWith('..')) {
        problems.push(
          `${where} imports ${spec}, outside its own package; import the package by name instead`,
        );
      }
    }
  }
}

if (problems.length > 0) {
  console.error(`dependency direction check failed:\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log('dependency direction: ok');
