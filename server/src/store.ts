/**
 * The server's store: the records it keeps and the `Store` that keeps them, on SQLite for one process or
 * on Postgres for a cluster. The record types and the table shapes know no database; the engine modules
 * under store/ are the ones that do.
 */
import type { Store } from './store/records.ts';
import { openSqliteStore } from './store/sqlite.ts';

export * from './store/records.ts';

export interface StoreOptions {
  /** The SQLite file (or `:memory:`), used when there is no `databaseUrl`. */
  databasePath: string;
  /** A `postgres://` URL: the cluster's shared database. */
  databaseUrl?: string | undefined;
}

/** Opens the store the options name, bringing its schema up to date; rejects when it cannot be used. */
export async function openStore(options: StoreOptions): Promise<Store> {
  if (options.databaseUrl !== undefined && options.databaseUrl !== '') {
    // Loaded only when asked for, so a one-process server never loads the Postgres driver.
    const { openPostgresStore } = await import('./store/postgres.ts');
    return openPostgresStore(options.databaseUrl);
  }
  return openSqliteStore(options.databasePath);
}
