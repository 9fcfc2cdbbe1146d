/**
 * Verifies the caller's bearer JWT before any GraphQL work: signature against the JWKS, algorithm
 * allow-list (asymmetric only), issuer, audience, exp/nbf/iat with a small clock skew, and a tenant claim
 * that must be exactly one UUID. Every failure is a short reason for a 401; never the token, never a stack.
 */
import { readFile } from 'node:fs/promises';
import { LRUCache } from 'lru-cache';
import { createLocalJWKSet, createRemoteJWKSet, errors, jwtVerify, type JSONWebKeySet, type JWTPayload } from 'jose';
import { ALLOWED_ALGORITHMS, type AllowedAlgorithm, type PlatformConfig } from '../config/config.ts';
import { unauthenticated } from '../http/server.ts';
import { isUuid } from '../tenancy/tenant-context.ts';

/** Longer tokens are refused before parsing (Entra tokens with many groups stay far below this). */
export const MAX_TOKEN_BYTES = 8 * 1024;
/**
 * A verified token is remembered (by its exact text) until it expires, at most this long: a signature check
 * costs ~0.2 ms of a request's budget, and a client sends the same token many times. The price: a key
 * withdrawn from the JWKS stops working for tokens already seen within this window, not at once.
 */
export const VERIFIED_TOKEN_TTL_MS = 60_000;
const MAX_REMEMBERED_TOKENS = 10_000;

export interface CallerAuthConfig {
  issuer: string;
  audience: string;
  /** Claim holding the district id: `tenant_id` by default, `tid` for Microsoft Entra ID. */
  tenantClaim: string;
  algorithms: AllowedAlgorithm[];
  clockToleranceSeconds: number;
  jwks: { url: string } | { keys: JSONWebKeySet };
}

export interface Caller {
  tenantId: string;
  subject: string;
}

// The scheme is case-insensitive (RFC 9110); the token is compact JWS.
const BEARER = /^bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)$/i;

function reasonFor(error: unknown): string {
  if (error instanceof errors.JWTExpired) return 'token expired';
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === 'nbf') return 'token not yet valid';
    if (error.claim === 'iss') return 'token issuer not accepted';
    if (error.claim === 'aud') return 'token audience not accepted';
    return `token claim ${error.claim} invalid`;
  }
  if (error instanceof errors.JOSEAlgNotAllowed) return 'token algorithm not allowed';
  if (error instanceof errors.JWKSNoMatchingKey) return 'token signed by an unknown key';
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'token signature invalid';
  if (error instanceof errors.JWKSTimeout || error instanceof errors.JWKSInvalid) return 'signing keys unavailable';
  return 'token malformed';
}

function tenantFrom(payload: JWTPayload, claim: string): string {
  const value = payload[claim];
  if (value === undefined || value === null || value === '') throw unauthenticated(`token has no ${claim} claim`);
  if (!isUuid(value)) throw unauthenticated(`token ${claim} claim must be one district UUID`);
  return value.toLowerCase();
}

export function createCallerVerifier(config: CallerAuthConfig) {
  if (config.algorithms.some((alg) => !ALLOWED_ALGORITHMS.includes(alg))) {
    throw new Error(`JWT algorithms must be among ${ALLOWED_ALGORITHMS.join(', ')}`);
  }
  const keys = 'url' in config.jwks ? createRemoteJWKSet(new URL(config.jwks.url)) : createLocalJWKSet(config.jwks.keys);
  // By the token's exact text; the least recently used token goes when the cache is full.
  const verified = new LRUCache<string, Caller>({ max: MAX_REMEMBERED_TOKENS, ttl: VERIFIED_TOKEN_TTL_MS });
  return async (authorization: string | undefined): Promise<Caller> => {
    if (!authorization) throw unauthenticated('missing bearer token');
    if (authorization.length > MAX_TOKEN_BYTES) throw unauthenticated('token too large');
    const token = BEARER.exec(authorization)?.[1];
    if (!token) throw unauthenticated('authorization header must be "Bearer <JWT>"');
    const remembered = verified.get(token);
    if (remembered) return remembered;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, keys, {
        issuer: config.issuer,
        audience: config.audience,
        algorithms: config.algorithms,
        clockTolerance: config.clockToleranceSeconds,
        requiredClaims: ['exp'],
      }));
    } catch (error) {
      throw unauthenticated(reasonFor(error));
    }
    // jose checks `iat` only against maxTokenAge (which would also make `iat` mandatory): a token claiming to be
    // issued later than now, past the clock tolerance, comes from a wrong clock or was minted ahead of its use.
    if (typeof payload.iat === 'number' && payload.iat > Date.now() / 1000 + config.clockToleranceSeconds) {
      throw unauthenticated('token issued in the future');
    }
    const caller = {
      tenantId: tenantFrom(payload, config.tenantClaim),
      subject: typeof payload.sub === 'string' ? payload.sub : 'unknown',
    };
    // Never past `exp` (without the clock tolerance). A token accepted only thanks to the tolerance is not
    // remembered at all (and a ttl of 0 would mean "forever" to lru-cache).
    const ttl = Math.min((payload.exp ?? 0) * 1000 - Date.now(), VERIFIED_TOKEN_TTL_MS);
    if (ttl > 0) verified.set(token, caller, { ttl });
    return caller;
  };
}

/**
 * The caller-token settings: an external issuer (JWKS_URL / JWKS_FILE, with JWT_ISSUER and JWT_AUDIENCE), or
 * else the development issuer whose public keys the caller passes (`devIssuer`).
 */
export async function resolveCallerAuth(
  config: PlatformConfig,
  devIssuer?: { issuer: string; audience: string; jwks: JSONWebKeySet },
): Promise<CallerAuthConfig> {
  const { jwt } = config;
  const common = { tenantClaim: jwt.tenantClaim, algorithms: jwt.algorithms, clockToleranceSeconds: jwt.clockToleranceSeconds };
  if (jwt.jwksUrl || jwt.jwksFile) {
    if (!jwt.issuer || !jwt.audience) throw new Error('JWT_ISSUER and JWT_AUDIENCE are required with JWKS_URL or JWKS_FILE');
    const jwks = jwt.jwksUrl ? { url: jwt.jwksUrl } : { keys: JSON.parse(await readFile(jwt.jwksFile!, 'utf8')) as JSONWebKeySet };
    return { ...common, issuer: jwt.issuer, audience: jwt.audience, jwks };
  }
  if (!devIssuer) throw new Error('no caller-token issuer configured: set JWKS_URL or JWKS_FILE with JWT_ISSUER and JWT_AUDIENCE');
  return {
    ...common,
    issuer: jwt.issuer ?? devIssuer.issuer,
    audience: jwt.audience ?? devIssuer.audience,
    jwks: { keys: devIssuer.jwks },
  };
}
