import type pg from 'pg';
import type { QueueSql } from '../replay-queue.ts';

// The replay queue's SQL on PostgreSQL, on the store's pool. A claim locks the oldest queued
// row with FOR UPDATE SKIP LOCKED inside a transaction: concurrent workers (on any machine) each
// get a different row, and none waits for another's.

function toPg(sql: string, schema: string): string {
  let n = 0;
  return sql.replaceAll('{t}', `${schema}.`).replace(/\?/g, () => `$${++n}`);
}

export function postgresQueueSql(pool: pg.Pool, quotedSchema: string): QueueSql {
  return {
    lockClause: ' FOR UPDATE SKIP LOCKED',
    async query(sql, params = []) {
      const { rows } = await pool.query(toPg(sql, quotedSchema), params as unknown[]);
      return rows as Record<string, unknown>[];
    },
    async transaction(body) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const result = await body({
          async query(sql, params = []) {
            const { rows } = await client.query(toPg(sql, quotedSchema), params as unknown[]);
            return rows as Record<string, unknown>[];
          },
        });
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {});
        throw error;
      } finally {
        client.release();
      }
    },
    // The pool is the store's: the store closes it.
    close: async () => {},
  };
}
