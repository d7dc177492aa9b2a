/**
 * The server's store: the records it keeps and the `Store` that keeps them, opened on SQLite. The
 * record types and the table shapes know no database; store/sqlite.ts is the one that does.
 */
export * from './store/records.ts';
export { openStore } from './store/sqlite.ts';
