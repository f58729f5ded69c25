/** Verifying Glance image signatures with cursive, the library Nova uses for verify_glance_signatures. */
import { clientEnv, runClient } from './peers.js';

/** cursive's get_verifier with its key-manager fetch replaced by the exported DER certificate. */
export const CURSIVE_VERIFY = `
import json, sys
from cryptography import x509
from cursive import signature_utils, certificate_utils
der = open(sys.argv[1], 'rb').read()
cert = x509.load_der_x509_certificate(der)
props = json.loads(sys.argv[3])
uuid = props['img_signature_certificate_uuid']
def from_barbican(context, wanted):
    if wanted != uuid:
        raise Exception('no such secret')
    return cert
signature_utils.get_certificate = from_barbican
assert signature_utils.should_create_verifier(props)
verifier = signature_utils.get_verifier(None, uuid, props['img_signature_hash_method'], props['img_signature'],
                                        props['img_signature_key_type'])
with open(sys.argv[2], 'rb') as f:
    for chunk in iter(lambda: f.read(1 << 20), b''):
        verifier.update(chunk)
try:
    verifier.verify()
except Exception as e:
    print('INVALID', type(e).__name__)
    sys.exit(0)
print('VERIFIED', certificate_utils.is_within_valid_dates(cert))
`;

export async function cursiveVerify(
  der: string,
  file: string,
  props: Record<string, unknown>,
  home: string,
): Promise<string> {
  const out = await runClient(
    '/usr/bin/python3',
    ['-c', CURSIVE_VERIFY, der, file, JSON.stringify(props)],
    clientEnv(home),
  );
  return out.trim();
}
