/**
 * The file names of a KEYDIR (the layout keys/ceremony.ts writes and documents): what signing, revocation and root
 * rotation need to find a key, without loading the ceremony and its certificate issuing (node-forge) to sign.
 */
export const SIGNER_NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;
export const KEY_FILE = 'key.pem';
export const CERT_FILE = 'cert.pem';
export const SIGNER_FILE = 'signer.json';
