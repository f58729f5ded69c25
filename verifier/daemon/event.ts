/**
 * What the daemon logs: one event, its level, and the function that takes it. Both writers use it: log.ts (JSON
 * lines, or the journal) and journal.ts (the journal's native protocol), so neither needs the other's module.
 */
export type Level = 'info' | 'warning' | 'error';

export interface DaemonEvent {
  event: string;
  message: string;
  level?: Level;
  bundle?: string | null;
  artifact?: string | null;
  code?: string | null;
  media?: string | null;
  volume?: string | null;
  [field: string]: unknown;
}

export type DaemonLog = (e: DaemonEvent) => void;
