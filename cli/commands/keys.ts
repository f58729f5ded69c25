/** `ecluse keys init`: the offline root ceremony. */
import type { Command } from 'commander';
import fs from 'node:fs';
import path from 'node:path';
import { KEY_FILE, addSigner, initKeys } from '../../keys/ceremony.js';
import { revokeSigner } from '../../keys/revocation.js';
import { rotateRoot } from '../../keys/root-rotation.js';
import { loadTrustAnchors } from '../../keys/trust.js';
import { NEW_PASSPHRASE_ENV, PASSPHRASE_ENV, resolvePassphrase, signerPassphraseEnv } from '../../keys/passphrase.js';
import { changePassphrase, readPrivateKey } from '../../keys/keyfile.js';
import { EcluseError } from '../../sneakernet/errors.js';
import { report, warn, type CommandContext } from '../output.js';

export function registerKeys(program: Command, ctx: () => CommandContext): void {
  const keys = program.command('keys').description('create and manage the site keys (export station, offline)');
  keys
    .command('init')
    .description(
      'run the root ceremony: create the site root and the signers. KEYDIR/trust/ holds only public material, to\n' +
        'install at the import station; KEYDIR/signers/<name>/ holds each signer key and its certificate issued by\n' +
        'the root; KEYDIR/root/ holds the root key, needed only for later ceremonies: keep it offline.',
    )
    .requiredOption('--out <KEYDIR>', 'folder to create the keys in')
    .option('--signers <names>', 'comma-separated signer names', 'operator')
    .option('--signer-validity-days <days>', 'how long signer certificates are valid', '730')
    .option('--no-passphrase', 'write private keys unencrypted (test labs only)')
    .addHelpText(
      'after',
      '\nPrivate keys are encrypted with a passphrase asked on the terminal, or taken from ECLUSE_PASSPHRASE.\n\n' +
        'Example:\n  ecluse keys init --out /media/offline/site-keys --signers alice,bob\n',
    )
    .action(async (o: { out: string; signers: string; signerValidityDays: string; passphrase: boolean }) => {
      await report(ctx(), async () => {
        const days = Number(o.signerValidityDays);
        if (!Number.isInteger(days) || days < 1)
          throw new EcluseError('E_USAGE', '--signer-validity-days must be a whole number of days');
        const passphrase = await resolvePassphrase({
          noPassphrase: !o.passphrase,
          purpose: 'the new site keys',
          confirm: true,
        });
        if (passphrase === null)
          warn('private keys are written UNENCRYPTED (--no-passphrase): anyone who reads them can sign for this site');
        const r = await initKeys({
          out: o.out,
          signers: o.signers
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean),
          passphrase,
          signerValidityDays: days,
        });
        return {
          json: {
            trust: r.trustDir,
            root: r.rootDir,
            rootKeyId: r.rootKeyId,
            signers: r.signers,
            encrypted: passphrase !== null,
          },
          human: [
            `site root ${r.rootKeyId.slice(0, 16)} created`,
            ...r.signers.map(
              (s) => `signer ${s.name}: ${s.dir} (key ${s.keyId.slice(0, 16)}, valid until ${s.notAfter})`,
            ),
            `install ${r.trustDir} at the import station: ecluse site init --trust ${r.trustDir} --site SITE_ID`,
            `keep ${r.rootDir} offline: it is needed only to add, revoke or rotate keys`,
          ],
        };
      });
    });

  keys
    .command('add-signer')
    .description('issue a new signer key and certificate under the site root (a root ceremony; nothing changes inside)')
    .argument('<NAME>', 'the new signer (lowercase letters, digits, - and _)')
    .requiredOption('--keys <KEYDIR>', 'the key folder made by "ecluse keys init" (its root/ is needed)')
    .option('--validity-days <days>', 'how long the certificate is valid', '730')
    .option('--no-passphrase', 'write the new key unencrypted (test labs only)')
    .addHelpText(
      'after',
      '\nThe passphrase unlocks the root key and encrypts the new key.\n\nExample:\n  ecluse keys add-signer carol --keys /media/offline/site-keys\n',
    )
    .action(async (name: string, o: { keys: string; validityDays: string; passphrase: boolean }) => {
      await report(ctx(), async () => {
        const passphrase = await resolvePassphrase({
          noPassphrase: !o.passphrase,
          purpose: 'the root key and the new signer key',
        });
        const r = await addSigner({ keyDir: o.keys, name, passphrase, validityDays: Number(o.validityDays) });
        return {
          json: { signer: r },
          human: `signer ${r.name}: ${r.dir} (key ${r.keyId.slice(0, 16)}, valid until ${r.notAfter})`,
        };
      });
    });

  keys
    .command('revoke')
    .description(
      'revoke a signer: writes a revocation list signed by the site root into KEYDIR/trust/; every later export carries\n' +
        'it onto the media, and the import station refuses that key from the moment the list arrives (E_REVOKED)',
    )
    .argument('<NAME>', 'the signer to revoke')
    .requiredOption('--keys <KEYDIR>', 'the key folder made by "ecluse keys init" (its root/ is needed)')
    .option('--reason <TEXT>', 'why, for the audit log', '')
    .addHelpText(
      'after',
      '\nExample:\n  ecluse keys revoke alice --keys /media/offline/site-keys --reason "laptop lost"\n',
    )
    .action(async (name: string, o: { keys: string; reason: string }) => {
      await report(ctx(), async () => {
        const anchors = loadTrustAnchors(path.join(o.keys, 'trust'));
        const list = await revokeSigner({
          keyDir: o.keys,
          name,
          reason: o.reason,
          anchors,
          passphrase: () => resolvePassphrase({ noPassphrase: false, purpose: 'the root key' }),
        });
        return {
          json: { version: list.version, revoked: list.revoked },
          human: `revocation list version ${list.version}: ${list.revoked.map((r) => r.name).join(', ')} revoked; the next export carries it inside`,
        };
      });
    });

  keys
    .command('rotate-root')
    .description(
      'replace the site root (a ceremony): a new root key, announced by a document signed by the old and the new root;\n' +
        'the signers are certified again by the new root (they keep their keys; a revoked signer is not), the\n' +
        'revocation list is signed again.\n' +
        'Every later export carries the root documents; import stations follow them version by version.',
    )
    .requiredOption('--keys <KEYDIR>', 'the key folder made by "ecluse keys init" (its root/ is needed)')
    .addHelpText(
      'after',
      '\nThe old root key is kept as root/key-vN.pem: destroy it once every station has rotated.\n\nExample:\n  ecluse keys rotate-root --keys /media/offline/site-keys\n',
    )
    .action(async (o: { keys: string }) => {
      await report(ctx(), async () => {
        const anchors = loadTrustAnchors(path.join(o.keys, 'trust'));
        const r = await rotateRoot({
          keyDir: o.keys,
          anchors,
          passphrase: () => resolvePassphrase({ noPassphrase: false, purpose: 'the root key (old and new)' }),
        });
        return {
          json: r,
          human: [
            `site root version ${r.version} (key ${r.rootKeyId.slice(0, 16)}); signers certified again: ${r.signers.join(', ') || 'none'}`,
            ...(r.notCertified.length > 0
              ? [`not certified again (revoked): ${r.notCertified.join(', ')}; they stay on the revocation list`]
              : []),
          ],
        };
      });
    });

  keys
    .command('passwd')
    .description(
      "change the passphrase of one private key: a signer's (KEYDIR/signers/NAME), the root's (KEYDIR/root) or a key\n" +
        'file. The key is encrypted again with scrypt (files from before scrypt are upgraded) and replaced atomically;\n' +
        'the certificate and everything inside stay as they are. Give each operator their own passphrase.',
    )
    .argument('<KEY>', 'a folder holding key.pem, or the key file itself')
    .addHelpText(
      'after',
      '\nThe current passphrase comes from ECLUSE_PASSPHRASE_<NAME> (a signer folder named NAME), else\n' +
        'ECLUSE_PASSPHRASE, else the terminal; the new one from ECLUSE_NEW_PASSPHRASE, else the terminal (asked twice).\n' +
        'At export, each --signer folder NAME takes its passphrase from ECLUSE_PASSPHRASE_<NAME> when that is set.\n\n' +
        'Example:\n  ecluse keys passwd /media/alice/site-keys/signers/alice\n',
    )
    .action(async (key: string) => {
      await report(ctx(), async () => {
        const isDir = fs.existsSync(key) && fs.statSync(key).isDirectory();
        const file = path.resolve(isDir ? path.join(key, KEY_FILE) : key);
        if (!fs.existsSync(file)) throw new EcluseError('E_KEY', `no private key at ${file}`, { check: 'key' });
        const name = path.basename(path.dirname(file));
        const current = () =>
          resolvePassphrase({
            noPassphrase: false,
            purpose: `the key ${file}`,
            env: [signerPassphraseEnv(name), PASSPHRASE_ENV],
          });
        // The current passphrase is checked before a new one is asked for.
        await readPrivateKey(file, current);
        const fresh = await resolvePassphrase({
          noPassphrase: false,
          purpose: `the key ${file} (new passphrase)`,
          confirm: true,
          env: [NEW_PASSPHRASE_ENV],
        });
        await changePassphrase(file, current, fresh as string);
        return {
          json: { file, kdf: 'scrypt', cipher: 'aes-256-cbc' },
          human: `${file}: encrypted again under the new passphrase (scrypt, AES-256-CBC)`,
        };
      });
    });
}
