/** Forged, stale or ambiguous caller tokens: refused with the exact reason, or served as the signed district only. */
import { SignJWT, UnsecuredJWT, generateKeyPair, importJWK, type CryptoKey, type JWTHeaderParameters } from 'jose';
import { describe, expect } from 'vitest';
import { attack, expectRefusal, expectServedWithoutForeignData, NORTH, SOUTH, type Battery } from './harness.ts';

const DISTRICT = '{ district { id name } students(first: 100) { edges { node { id } } } }';
const now = () => Math.floor(Date.now() / 1000);
const ALG = 'token algorithm not allowed';
const NO_TENANT = 'token has no tenant_id claim';
const BAD_TENANT = 'token tenant_id claim must be one district UUID';

export function tokenForgeryAttacks(battery: Battery): void {
  const payload = (claims: Record<string, unknown>) => {
    const { auth } = battery.platform;
    const merged: Record<string, unknown> = {
      iss: auth.issuer,
      aud: auth.audience,
      sub: 'attacker',
      iat: now(),
      exp: now() + 600,
      tenant_id: NORTH,
      ...claims,
    };
    for (const [name, value] of Object.entries(merged)) if (value === undefined) delete merged[name];
    return merged;
  };
  const devKey = async () => (await importJWK(battery.platform.keys.devIssuer.privateJwk, 'ES256')) as CryptoKey;
  const craft = async (claims: Record<string, unknown> = {}, header: Partial<JWTHeaderParameters> = {}, key?: CryptoKey | Uint8Array) =>
    new SignJWT(payload(claims))
      .setProtectedHeader({ alg: 'ES256', kid: battery.platform.keys.devIssuer.privateJwk.kid, typ: 'JWT', ...header })
      .sign(key ?? (await devKey()));
  const send = (token: string) => battery.platform.graphql({ query: DISTRICT }, { token });
  const refused = (name: string, token: () => Promise<string>, reason: string) =>
    attack(name, async () => expectRefusal(await send(await token()), 401, reason, 'UNAUTHENTICATED'));

  describe('token forgery', () => {
    refused('alg: none', async () => new UnsecuredJWT(payload({ tenant_id: SOUTH })).encode(), ALG);
    refused(
      'HS256 signed with the public key',
      () =>
        craft(
          { tenant_id: SOUTH },
          { alg: 'HS256' },
          new TextEncoder().encode(JSON.stringify(battery.platform.keys.devIssuer.jwks.keys[0])),
        ),
      ALG,
    );
    refused(
      'kid pointing at an unknown key',
      async () => craft({ tenant_id: SOUTH }, { kid: 'attacker-key' }, (await generateKeyPair('ES256')).privateKey),
      'token signed by an unknown key',
    );
    refused(
      "another key under the issuer's kid",
      async () => craft({ tenant_id: SOUTH }, {}, (await generateKeyPair('ES256')).privateKey),
      'token signature invalid',
    );
    refused('expired', () => craft({ tenant_id: SOUTH, iat: now() - 7200, exp: now() - 600 }), 'token expired');
    refused('nbf in the future', () => craft({ tenant_id: SOUTH, nbf: now() + 600 }), 'token not yet valid');
    refused('wrong issuer', () => craft({ tenant_id: SOUTH, iss: 'https://attacker.example/' }), 'token issuer not accepted');
    refused('wrong audience', () => craft({ tenant_id: SOUTH, aud: 'some-other-api' }), 'token audience not accepted');
    refused('tenant claim missing', () => craft({ tenant_id: undefined }), NO_TENANT);
    refused('tenant claim empty', () => craft({ tenant_id: '' }), NO_TENANT);
    refused('tenant claim not a UUID', () => craft({ tenant_id: 'south-ridge' }), BAD_TENANT);
    refused('tenant claim an array of districts', () => craft({ tenant_id: [NORTH, SOUTH] }), BAD_TENANT);
    refused('tenant claim holding SQL text', () => craft({ tenant_id: `${NORTH}' or tenant_id = '${SOUTH}` }), BAD_TENANT);

    attack('two tenant claims (tenant_id and Entra tid): only the configured claim counts', async () => {
      const result = await send(await craft({ tenant_id: NORTH, tid: SOUTH }));
      expectServedWithoutForeignData(result);
      expect(result.body.data.district.id).toBe(NORTH);
    });

    attack('two tenant_id members in one signed payload: the lexically last wins (RFC 7519), never a mix', async () => {
      // Hand-built JSON, since an object cannot hold a key twice; signed by the issuer itself.
      const json = JSON.stringify(payload({})).replace('"tenant_id":', `"tenant_id":"${SOUTH}","tenant_id":`);
      expect(json.split('"tenant_id"')).toHaveLength(3);
      const header = { alg: 'ES256', kid: battery.platform.keys.devIssuer.privateJwk.kid, typ: 'JWT' };
      const signingInput = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(json).toString('base64url')}`;
      const { subtle } = globalThis.crypto;
      const signature = await subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, await devKey(), new TextEncoder().encode(signingInput));
      const result = await send(`${signingInput}.${Buffer.from(signature).toString('base64url')}`);
      expectServedWithoutForeignData(result);
      expect(result.body.data.district.id).toBe(NORTH);
    });
  });
}
