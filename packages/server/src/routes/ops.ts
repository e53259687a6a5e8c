import type { Handler } from '../context.ts';
import { HttpError } from '../http-error.ts';

// Health (the process answers), readiness (the store answers, within READY_TIMEOUT_MS), metrics.

const READY_TIMEOUT_MS = 2000;

export const healthz: Handler = async () => ({ status: 200, json: { status: 'ok' } });

export const readyz: Handler = async (context) => {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      context.store.listRuns({ limit: 1 }),
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer within ${READY_TIMEOUT_MS} ms`)),
          READY_TIMEOUT_MS,
        );
      }),
    ]);
  } catch (error) {
    context.metrics.storeErrors++;
    throw new HttpError(
      503,
      'store_unavailable',
      `the store does not answer (${(error as Error).message}): check ${context.store.location}`,
      {
        headers: { 'Retry-After': '1' },
      },
    );
  } finally {
    clearTimeout(timer);
  }
  return { status: 200, json: { status: 'ready' } };
};

export const metrics: Handler = async (context) => ({
  status: 200,
  body: context.metrics.render(),
  contentType: 'text/plain; version=0.0.4; charset=utf-8',
});
