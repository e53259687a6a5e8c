// Scans adversarial inputs (built from a recipe, so they need not cross the thread boundary) in a
// worker thread, so the test can stop it if a pattern ever backtracks catastrophically.
import { parentPort, workerData } from 'node:worker_threads';
import { DETECTORS, type ScanStats, scanText } from '../detectors.ts';

const { recipes, size } = workerData as {
  recipes: Array<{ name: string; head: string; unit: string; tail: string }>;
  size: number;
};
for (const recipe of recipes) {
  const text =
    recipe.head +
    recipe.unit.repeat(Math.ceil((size - recipe.head.length - recipe.tail.length) / recipe.unit.length)) +
    recipe.tail;
  const stats: ScanStats = { candidates: 0, candidateChars: 0 };
  const matches = scanText(text, DETECTORS, stats);
  parentPort!.postMessage({ name: recipe.name, length: text.length, matches: matches.length, ...stats });
}
