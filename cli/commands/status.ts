/** `ecluse status`: what the import daemon is doing, for the operator at the station. */
import type { Command } from 'commander';
import { readStatus } from '../../verifier/daemon/status.js';
import { resolveHome } from '../home.js';
import { formatBytes, report, type CommandContext } from '../output.js';

/**
 * `state: message`, without saying the state twice: a message that already begins with the state word (or carries
 * it, as the daemon's "idle; last: ..." does) is printed as it is.
 */
export function said(state: string, message: string): string {
  const m = message.trim();
  if (m === '' || m.toLowerCase() === state) return state;
  return new RegExp(`^${state}\\b`, 'i').test(m) ? m : `${state}: ${m}`;
}

export function registerStatus(program: Command, ctx: () => CommandContext, home: () => string | undefined): void {
  program
    .command('status')
    .description(
      'show what the import daemon is doing: idle, importing (with progress), waiting for a volume, last outcome',
    )
    .addHelpText(
      'after',
      '\nWith --json: {"ok":true,"status":{"state":"idle|reading|importing|waiting|stopped","message",...}}.\n' +
        '\nExample:\n  ecluse --home /var/lib/ecluse status\n',
    )
    .action(async () => {
      await report(ctx(), async () => {
        const s = readStatus(resolveHome(home()));
        const human = [said(s.state, s.message)];
        const p = s.progress;
        if (p) {
          human.push(
            `  ${p.phase} bundle ${p.station} #${p.sequence}${p.volume ? ` ${p.volume}` : ''} from ${p.mountPoint}: ` +
              `${p.percent}% (${formatBytes(p.bytesDone)} of ${formatBytes(p.bytesTotal)})`,
          );
        }
        for (const w of s.waiting) human.push(`  ${w.message} (have ${w.have.length} of ${w.volumes})`);
        for (const m of s.media) human.push(`  medium ${m.mountPoint} (${m.device}): ${said(m.state, m.message)}`);
        if (s.last) human.push(`  last ${s.last.outcome} at ${s.last.at}: ${s.last.message}`);
        return { json: { status: s }, human };
      });
    });
}
