/** The export station's catalog database handle (better-sqlite3): what catalog.ts opens and migrations.ts migrates. */
import type Database from 'better-sqlite3';

export type RelayDb = Database.Database;
