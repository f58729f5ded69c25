/**
 * The registry client's reading of authentication challenges (RFC 7235 as registries write them): Basic, Bearer with
 * quoted or bare parameters in any order; a realm that is not an http(s) URL is no challenge to follow.
 */
import { describe, expect, it } from 'vitest';
import { parseChallenge } from '../../../verifier/targets/registry-http.js';

describe('parseChallenge', () => {
  it('Basic and Bearer challenges as registries send them', () => {
    expect(parseChallenge('Basic realm="Registry Realm"')).toEqual({ scheme: 'basic' });
    expect(
      parseChallenge(
        'Bearer realm="https://auth.site.example/token",service="registry.site.example",scope="repository:acme/app:pull"',
      ),
    ).toEqual({ scheme: 'bearer', realm: 'https://auth.site.example/token', service: 'registry.site.example' });
    expect(parseChallenge('bearer service=harbor-registry, realm=http://127.0.0.1:8080/service/token')).toEqual({
      scheme: 'bearer',
      realm: 'http://127.0.0.1:8080/service/token',
      service: 'harbor-registry',
    });
  });

  it('nothing to follow: no header, another scheme, a realm that is not http(s)', () => {
    expect(parseChallenge(null)).toBeUndefined();
    expect(parseChallenge('Negotiate abc')).toBeUndefined();
    expect(parseChallenge('Bearer service="x"')).toBeUndefined();
    expect(parseChallenge('Bearer realm="file:///etc/passwd"')).toBeUndefined();
  });
});
