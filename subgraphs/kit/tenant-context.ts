/**
 * The gateway → subgraph tenant context: a short-lived EdDSA JWS that only the gateway can sign.
 * The gateway signs one per subgraph fetch (audience = subgraph name, so a context captured on
 * its way to one subgraph cannot be replayed against another); subgraphs verify it on every request
 * and never trust `x-tenant-id` alone.
 */
import { randomUUID } from 'node:crypto';
import { SignJWT, jwtVerify, exportJWK, generateKeyPair, importJWK, errors, type JWK, type CryptoKey } from 'jose';

export const TENANT_CONTEXT_HEADER = 'x-tenant-context';
export const TENANT_ID_HEADER = 'x-tenant-id';
const ISSUER = 'k12-gateway';
const ALGORITHM = 'EdDSA';
/** Upper bound the issue sets; a context only has to live for one subgraph fetch. */
export const TENANT_CONTEXT_TTL_SECONDS = 30;

export interface TenantContext {
  tenantId: string;
  subject: string;
  requestId: string;
}

export class TenantContextError extends Error {}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isUuid = (value: unknown): value is string => typeof value === 'string' && UUID.test(value);

export interface ContextKeyPair {
  privateJwk: JWK;
  publicJwk: JWK;
}

export async function generateContextKeyPair(): Promise<ContextKeyPair> {
  const { privateKey, publicKey } = await generateKeyPair(ALGORITHM, { crv: 'Ed25519', extractable: true });
  const kid = randomUUID();
  return {
    privateJwk: { ...(await exportJWK(privateKey)), kid, alg: ALGORITHM },
    publicJwk: { ...(await exportJWK(publicKey)), kid, alg: ALGORITHM },
  };
}

export async function createTenantContextSigner(privateJwk: JWK) {
  const key = (await importJWK(privateJwk, ALGORITHM)) as CryptoKey;
  return (context: TenantContext, audience: string): Promise<string> =>
    new SignJWT({ tid: context.tenantId, rid: context.requestId })
      .setProtectedHeader({ alg: ALGORITHM, kid: privateJwk.kid })
      .setIssuer(ISSUER)
      .setAudience(audience)
      .setSubject(context.subject)
      .setIssuedAt()
      .setExpirationTime(`${TENANT_CONTEXT_TTL_SECONDS}s`)
      .sign(key);
}

/** Returns a verifier bound to one subgraph; it throws TenantContextError with a short, safe reason. */
export async function createTenantContextVerifier(publicJwk: JWK, audience: string) {
  const key = (await importJWK(publicJwk, ALGORITHM)) as CryptoKey;
  return async (token: string | undefined, claimedTenantId: string | undefined): Promise<TenantContext> => {
    if (!token) throw new TenantContextError('missing tenant context');
    let payload;
    try {
      ({ payload } = await jwtVerify(token, key, {
        algorithms: [ALGORITHM],
        issuer: ISSUER,
        audience,
        maxTokenAge: TENANT_CONTEXT_TTL_SECONDS + 5,
        requiredClaims: ['exp', 'iat', 'sub', 'tid', 'rid'],
      }));
    } catch (error) {
      if (error instanceof errors.JWTExpired) throw new TenantContextError('expired tenant context');
      throw new TenantContextError('invalid tenant context');
    }
    const { tid, rid, sub } = payload;
    if (!isUuid(tid) || typeof rid !== 'string' || typeof sub !== 'string') {
      throw new TenantContextError('invalid tenant context');
    }
    if (claimedTenantId !== undefined && claimedTenantId !== tid) {
      throw new TenantContextError('tenant header does not match tenant context');
    }
    return { tenantId: tid, subject: sub, requestId: rid };
  };
}
