import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
import type { QueueSql } from '../replay-queue.ts';

// The replay queue's SQL on SQLite: its own connection to the store's file, so that its
// transactions never interleave with the store's appends on the same connection. A claim is a
// BEGIN IMMEDIATE transaction: SQLite admits one writer at a time across processes, so two
// workers can never take the same queued row. Callers of one queue are serialized by a promise
// chain (the connection holds one transaction at a time).

export function sqliteQueueSql(file: string, busyTimeoutMs: number): QueueSql {
  const db = new DatabaseSync(file, { timeout: busyTimeoutMs });
  const statements = new Map<string, StatementSync>();
  let chain: Promise<unknown> = Promise.resolve();
  const serial = <T>(task: () => T | Promise<T>): Promise<T> => {
    const run = chain.then(task, task);
    chain = run.catch(() => {});
    return run;
  };
  const run = (sql: string, params: readonly unknown[] = []): Record<string, unknown>[] => {
    const text = sql.replaceAll('{t}', '');
    let statement = statements.get(text);
    if (statement === undefined) {
      statement = db.prepare(text);
      statements.set(text, statement);
    }
    return statement.all(...(params as SQLInputValue[])) as Record<string, unknown>[];
  };
  const tx = { query: async (sql: string, params?: readonly unknown[]) => run(sql, params) };
  return {
    lockClause: '',
    query: (sql, params) => serial(() => run(sql, params)),
    transaction: (body) =>
      serial(async () => {
        db.exec('BEGIN IMMEDIATE');
        try {
          const result = await body(tx);
          db.exec('COMMIT');
          return result;
        } catch (error) {
          if (db.isTransaction) db.exec('ROLLBACK');
          throw error;
        }
      }),
    close: () =>
      serial(() => {
        if (db.isOpen) db.close();
      }),
  };
}
