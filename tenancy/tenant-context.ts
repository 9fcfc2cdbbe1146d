/**
 * The gateway → subgraph tenant context: a short-lived EdDSA JWS that only the gateway can sign.
 * The gateway signs one per subgraph fetch (audience = subgraph name, so a context captured on
 * its way to one subgraph cannot be replayed against another); subgraphs verify it on every request
 * and never trust `x-tenant-id` alone. Each context carries a random `jti` that a subgraph process accepts
 * once (per process, or across every replica with Redis: redis-replay-guard.ts), so a captured context cannot be
 * replayed (docs/isolation.md).
 */
import { createPrivateKey, createPublicKey, randomUUID, sign as signBytes, verify as verifySignature, type KeyObject } from 'node:crypto';
import { exportJWK, generateKeyPair, type JWK } from 'jose';

export const TENANT_CONTEXT_HEADER = 'x-tenant-context';
export const TENANT_ID_HEADER = 'x-tenant-id';
/**
 * For a mutation, the gateway also signs a context for each service the subgraph references (audience = that
 * service), sent in this header; the subgraph forwards it to that service to look ids up (references.ts).
 */
export const referenceContextHeader = (service: string) => `${TENANT_CONTEXT_HEADER}-${service}`;
const ISSUER = 'k12-gateway';
const ALGORITHM = 'EdDSA';
/** Upper bound the issue sets; a context only has to live for one subgraph fetch. */
export const TENANT_CONTEXT_TTL_SECONDS = 30;
/** Contexts remembered per verifier: about 7,000 fetches a second for 35 s, a few tens of MB at most. */
export const MAX_REMEMBERED_CONTEXTS = 250_000;

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

/**
 * Signs with Node's synchronous Ed25519 (~50 µs) rather than jose's WebCrypto path (~160 µs and a thread-pool
 * hop): the gateway signs on every subgraph fetch. The result is the compact JWS jose's SignJWT would produce
 * (same header and claims), and the subgraphs verify it with jose.
 */
export async function createTenantContextSigner(privateJwk: JWK) {
  const key = createPrivateKey({ key: privateJwk, format: 'jwk' });
  if (key.asymmetricKeyType !== 'ed25519') throw new Error('the tenant-context key must be an Ed25519 private key');
  const header = Buffer.from(JSON.stringify({ alg: ALGORITHM, kid: privateJwk.kid })).toString('base64url');
  return async (context: TenantContext, audience: string): Promise<string> => {
    const iat = Math.floor(Date.now() / 1000);
    const claims = {
      tid: context.tenantId,
      rid: context.requestId,
      jti: randomUUID(),
      iss: ISSUER,
      aud: audience,
      sub: context.subject,
      iat,
      exp: iat + TENANT_CONTEXT_TTL_SECONDS,
    };
    const signingInput = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
    return `${signingInput}.${signBytes(null, Buffer.from(signingInput), key).toString('base64url')}`;
  };
}

/**
 * What a replay guard says of a context's `jti`: accepted (first use), replayed, full (no room to remember it) or
 * unavailable (its shared memory cannot be reached). Every answer but `accepted` refuses the context.
 */
export type ReplayVerdict = 'accepted' | 'replayed' | 'full' | 'unavailable';

/** Remembers accepted `jti`s until they expire; synchronous in process, a promise when the memory is shared. */
export interface ReplayMemory {
  accept(jti: string, expiresAtMs: number): ReplayVerdict | Promise<ReplayVerdict>;
}

/**
 * The `jti`s this process has accepted, each kept until its context expires. Contexts arrive in roughly
 * expiry order (one fixed TTL), so expired entries are dropped from the front of the insertion-ordered map.
 * When full of unexpired entries it refuses new contexts: failing closed beats forgetting a replayable one.
 * Not lru-cache: its `max` makes room by evicting the least recently used entry (here an unexpired jti, which
 * could then be replayed) and it has no "refuse when full"; emulating that (`size`, then `purgeStale()`) would
 * scan every entry on each request once full, where this map drops expired entries from its front.
 */
export class ReplayGuard implements ReplayMemory {
  readonly #expiries = new Map<string, number>();
  readonly #capacity: number;
  constructor(capacity = MAX_REMEMBERED_CONTEXTS) {
    this.#capacity = capacity;
  }

  /** Records `jti` until `expiresAtMs`, or says why it cannot. */
  accept(jti: string, expiresAtMs: number, now = Date.now()): 'accepted' | 'replayed' | 'full' {
    for (const [seen, expiry] of this.#expiries) {
      if (expiry > now) break;
      this.#expiries.delete(seen);
    }
    if (this.#expiries.has(jti)) return 'replayed';
    if (this.#expiries.size >= this.#capacity) return 'full';
    this.#expiries.set(jti, expiresAtMs);
    return 'accepted';
  }
}

const BASE64URL = /^[A-Za-z0-9_-]+$/;
const MAX_CONTEXT_AGE_SECONDS = TENANT_CONTEXT_TTL_SECONDS + 5;

const decodeJson = (part: string): unknown => JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Signature, issuer, audience, age and claim shapes of a context; `what` names it in the error. Node's synchronous
 * Ed25519 verification (~40 µs, no thread-pool hop) rather than jose's WebCrypto path, on every subgraph request:
 * the checks are jose's for this one algorithm (no `crit`, `alg` EdDSA, issuer, audience, `iat` not in the future,
 * `exp` not reached, age at most the TTL plus 5 s of clock skew).
 */
function verifyContextToken(key: KeyObject, token: string, audience: string, what: string) {
  const invalid = () => new TenantContextError(`invalid ${what}`);
  const parts = token.split('.');
  if (parts.length !== 3 || !parts.every((part) => BASE64URL.test(part))) throw invalid();
  const [header, payload, signature] = parts as [string, string, string];
  let claims: unknown;
  try {
    const protectedHeader = decodeJson(header);
    if (!isRecord(protectedHeader) || protectedHeader.alg !== ALGORITHM || 'crit' in protectedHeader) throw invalid();
    if (!verifySignature(null, Buffer.from(`${header}.${payload}`), key, Buffer.from(signature, 'base64url'))) throw invalid();
    claims = decodeJson(payload);
  } catch {
    throw invalid();
  }
  if (!isRecord(claims)) throw invalid();
  const { tid, rid, sub, jti, iss, aud, iat, exp, nbf } = claims;
  if (iss !== ISSUER || !(aud === audience || (Array.isArray(aud) && aud.includes(audience)))) throw invalid();
  if (typeof iat !== 'number' || typeof exp !== 'number' || (nbf !== undefined && typeof nbf !== 'number')) throw invalid();
  const now = Math.floor(Date.now() / 1000);
  if (iat > now || (typeof nbf === 'number' && nbf > now)) throw invalid();
  if (exp <= now || now - iat > MAX_CONTEXT_AGE_SECONDS) throw new TenantContextError(`expired ${what}`);
  if (!isUuid(tid) || typeof rid !== 'string' || typeof sub !== 'string' || typeof jti !== 'string') throw invalid();
  return { tid, rid, sub, jti, exp };
}

function publicKeyOf(publicJwk: JWK): KeyObject {
  const key = createPublicKey({ key: publicJwk, format: 'jwk' });
  if (key.asymmetricKeyType !== 'ed25519') throw new Error('the tenant-context key must be an Ed25519 public key');
  return key;
}

/** Returns a verifier bound to one subgraph; it throws TenantContextError with a short, safe reason. */
export async function createTenantContextVerifier(publicJwk: JWK, audience: string, replays: ReplayMemory = new ReplayGuard()) {
  const key = publicKeyOf(publicJwk);
  return async (token: string | undefined, claimedTenantId: string | undefined): Promise<TenantContext> => {
    if (!token) throw new TenantContextError('missing tenant context');
    const { tid, rid, sub, jti, exp } = verifyContextToken(key, token, audience, 'tenant context');
    if (claimedTenantId !== undefined && claimedTenantId !== tid) {
      throw new TenantContextError('tenant header does not match tenant context');
    }
    // Last, so a refused request does not use up the context of a legitimate one.
    const verdict = replays.accept(jti, exp * 1000);
    // The in-process guard answers synchronously: no await (and no extra microtask) on that path.
    const replay = typeof verdict === 'string' ? verdict : await verdict;
    if (replay === 'replayed') throw new TenantContextError('replayed tenant context');
    if (replay === 'full') throw new TenantContextError('too many tenant contexts in flight');
    if (replay === 'unavailable') throw new TenantContextError('replay guard unavailable, try again');
    return { tenantId: tid, subject: sub, requestId: rid };
  };
}

/**
 * Checks a context the gateway signed for ANOTHER service (`audience`), which a subgraph forwards to that
 * service within the same request: valid, and for the same district and the same gateway request as the
 * subgraph's own verified context, so a subgraph never looks ids up for anyone else. It does not use up the
 * context's `jti`: the owning service does, when it verifies the context as its own.
 */
export async function createForwardedContextVerifier(publicJwk: JWK) {
  const key = publicKeyOf(publicJwk);
  return async (token: string | undefined, audience: string, own: TenantContext): Promise<string> => {
    const what = `tenant context for ${audience}`;
    if (!token) throw new TenantContextError(`missing ${what}`);
    const { tid, rid } = verifyContextToken(key, token, audience, what);
    if (tid !== own.tenantId || rid !== own.requestId) throw new TenantContextError(`${what} is not this request's`);
    return token;
  };
}
