#!/usr/bin/env node
/**
 * `ecluse`: one CLI for both stations. A thin dispatcher: each command parses its options, calls one module, and
 * reports through cli/output.ts (human lines, or one JSON object with --json; stable exit codes).
 */
import { writeFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import type { CommandContext } from './output.js';
import { asEcluseError, exitCodeFor, EXIT } from '../sneakernet/errors.js';

// For benchmarks: the peak resident memory and CPU time of this process, written where ECLUSE_RUSAGE_FILE says.
if (process.env.ECLUSE_RUSAGE_FILE) {
  const target = process.env.ECLUSE_RUSAGE_FILE;
  process.on('exit', () => {
    const u = process.resourceUsage();
    writeFileSync(target, JSON.stringify({ maxRssKiB: u.maxRSS, userUs: u.userCPUTime, systemUs: u.systemCPUTime }));
  });
}

// `ecluse ... | head` closes the pipe early: that is not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
}

const program = new Command();
program
  .name('ecluse')
  .description(
    'écluse: the lock between vendors and an air-gapped site.\n' +
      'Export station: keys init, relay add, export. Import station: site init, inspect, verify, import, serve.',
  )
  .version('0.1.0')
  .option('--home <DIR>', 'state folder of this station (default: $ECLUSE_HOME, else ~/.local/share/ecluse)')
  .option('--json', 'print exactly one JSON object on stdout')
  .enablePositionalOptions()
  .addHelpText(
    'after',
    '\nThe whole journey:\n' +
      '  ecluse keys init --out keys --signers alice,bob\n' +
      '  ecluse --home out relay add disk.qcow2 --name debian-13 --version 20261101\n' +
      '  ecluse --home out export --to /media/usb0 --site paris-1 --signer keys/signers/alice --media-size 4G\n' +
      '  ecluse --home in site init --trust keys/trust --site paris-1\n' +
      '  ecluse --home in import /media/usb0\n' +
      '  ecluse --home in serve --listen 127.0.0.1:9292\n\n' +
      'Exit status: 0 success, 1 refused (a check failed: the E_ code says which), 2 bad usage, 3 local failure,\n' +
      '4 nothing to do (e.g. nothing new to export).\n',
  );

const globals = () => program.opts<{ home?: string; json?: boolean }>();
const ctx = () => ({ json: globals().json === true });
const home = () => globals().home;

type Register = (program: Command, ctx: () => CommandContext, home: () => string | undefined) => void;

/**
 * The command groups, in the order top-level help lists them, with the first words of a command line each answers
 * to. Only the groups a command line names are loaded (all of them for top-level help, `help` or an unknown word):
 * `ecluse status` does not pay for loading sigstore, express and node-forge (~0.35 s of every invocation otherwise).
 */
const GROUPS: Array<{ words: string[]; load: () => Promise<Register> }> = [
  { words: ['keys'], load: async () => (await import('./commands/keys.js')).registerKeys },
  { words: ['relay', 'export'], load: async () => (await import('./commands/relay.js')).registerRelay },
  {
    words: ['site', 'inspect', 'verify', 'import', 'serve'],
    load: async () => (await import('./commands/station.js')).registerStation,
  },
  { words: ['daemon', 'install-units'], load: async () => (await import('./commands/daemon.js')).registerDaemon },
  { words: ['status'], load: async () => (await import('./commands/status.js')).registerStatus },
  { words: ['token'], load: async () => (await import('./commands/token.js')).registerToken },
  { words: ['site'], load: async () => (await import('./commands/site-cert.js')).registerSiteCert },
  { words: ['site'], load: async () => (await import('./commands/site-keystone.js')).registerSiteKeystone },
  { words: ['target'], load: async () => (await import('./commands/target.js')).registerTarget },
  { words: ['audit'], load: async () => (await import('./commands/audit.js')).registerAudit },
  { words: ['user'], load: async () => (await import('./commands/user.js')).registerUser },
  { words: ['policy', 'store'], load: async () => (await import('./commands/policy.js')).registerPolicy },
  { words: ['receipt'], load: async () => (await import('./commands/receipt.js')).registerReceipt },
  { words: ['image'], load: async () => (await import('./commands/image.js')).registerImage },
  { words: ['self-update'], load: async () => (await import('./commands/self-update.js')).registerSelfUpdate },
];

/** The command word of the line: the first argument that is neither a global option nor its value. */
function commandWord(args: readonly string[]): string | null {
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a === '--home') i++;
    else if (a === '--json' || a.startsWith('--home=')) continue;
    else return a.startsWith('-') ? null : a;
  }
  return null;
}

const word = commandWord(process.argv.slice(2));
const named = GROUPS.filter((g) => word !== null && g.words.includes(word));
for (const group of named.length > 0 ? named : GROUPS) (await group.load())(program, ctx, home);

// Options such as --json and --home are accepted anywhere on the line, also after the subcommand.
const allCommands = (c: Command): Command[] => [c, ...c.commands.flatMap(allCommands)];
for (const cmd of program.commands.flatMap(allCommands)) {
  if (cmd.commands.length === 0) {
    cmd.option('--json', 'print exactly one JSON object on stdout');
    cmd.option('--home <DIR>', 'state folder of this station');
    cmd.hook('preAction', (_this, action) => {
      const o = action.opts<{ json?: boolean; home?: string }>();
      if (o.json) program.setOptionValue('json', true);
      if (o.home) program.setOptionValue('home', o.home);
    });
  }
}

// Usage errors of any command become exit 2 in one shape, `E_USAGE: <what> (see: ecluse <command> --help)`, whether
// commander found them (unknown option, missing argument) or a command did; with --json also one JSON object.
const commandPath = (c: Command): string => {
  const names: string[] = [];
  for (let at: Command | null = c; at; at = at.parent) names.unshift(at.name());
  return names.join(' ');
};
for (const c of allCommands(program)) {
  // Descriptions are prose: commander wraps them at the terminal's width, so a line break written in the source
  // (to keep it under 120 columns) becomes a space; a blank line or an indented line stays as written.
  c.description(c.description().replace(/([^\n])\n(?=[^\s])/g, '$1 '));
  c.exitOverride();
  c.enablePositionalOptions();
  c.showHelpAfterError(false);
  c.configureOutput({
    outputError: (str, write) => {
      const what = str.trim().replace(/^error: /, '');
      write(`E_USAGE: ${what} (see: ${commandPath(c)} --help)\n`);
    },
  });
  // A missing <FILE> is named before a missing --option: `relay add` with no file says the file is missing.
  // (commander checks options first; its two reporting methods are wrapped, their texts kept.)
  const required = c.registeredArguments.filter((a) => a.required);
  const reporting = c as unknown as {
    missingMandatoryOptionValue: (option: unknown) => void;
    missingArgument: (name: string) => void;
  };
  if (required.length > 0 && typeof reporting.missingMandatoryOptionValue === 'function') {
    const missingOption = reporting.missingMandatoryOptionValue.bind(c);
    reporting.missingMandatoryOptionValue = (option) => {
      const missing = required.find((_a, i) => c.args.length <= i);
      if (missing) reporting.missingArgument.call(c, missing.name());
      missingOption(option);
    };
  }
}
try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) {
    const helpOrVersion = e.exitCode === 0 || e.code === 'commander.helpDisplayed' || e.code === 'commander.version';
    if (!helpOrVersion && process.argv.includes('--json')) {
      const message = e.message.replace(/^error: /, '');
      process.stdout.write(`${JSON.stringify({ ok: false, code: 'E_USAGE', message })}\n`);
    }
    process.exitCode = helpOrVersion ? 0 : EXIT.usage;
  } else {
    // Outside report(): still one line with the right code and exit status, never a stack trace.
    const err = asEcluseError(e);
    process.stderr.write(`${err.line()}\n`);
    process.exitCode = exitCodeFor(err.code);
  }
}
