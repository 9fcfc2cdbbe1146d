/**
 * Keys the platform keeps in its data folder, generated on first start:
 * - the gateway's tenant-context key pair (EdDSA), whose public half every subgraph verifies with;
 * - a development token issuer (ES256) and its public JWKS, used when no JWKS_URL / JWKS_FILE is configured.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { SignJWT, exportJWK, generateKeyPair, importJWK, type JSONWebKeySet, type JWK } from 'jose';
import { generateContextKeyPair, type ContextKeyPair } from '../tenancy/tenant-context.ts';

export const DEV_ISSUER = 'https://dev-issuer.k12.localhost/';
export const DEV_AUDIENCE = 'k12-graph';
const DEV_ALGORITHM = 'ES256';

export interface PlatformKeys {
  context: ContextKeyPair;
  devIssuer: { privateJwk: JWK; jwks: JSONWebKeySet };
}

async function generateDevIssuer(): Promise<PlatformKeys['devIssuer']> {
  const { privateKey, publicKey } = await generateKeyPair(DEV_ALGORITHM, { extractable: true });
  const kid = randomUUID();
  return {
    privateJwk: { ...(await exportJWK(privateKey)), kid, alg: DEV_ALGORITHM },
    jwks: { keys: [{ ...(await exportJWK(publicKey)), kid, alg: DEV_ALGORITHM, use: 'sig' }] },
  };
}

/**
 * The files `npm start` hands its service processes (TENANT_CONTEXT_PRIVATE_KEY_FILE to the gateway,
 * TENANT_CONTEXT_PUBLIC_KEY_FILE to the subgraphs, JWKS_FILE for the development issuer).
 */
export const keyFiles = (dataDir: string) => ({
  contextPrivate: join(dataDir, 'tenant-context-private.jwk.json'),
  contextPublic: join(dataDir, 'tenant-context-public.jwk.json'),
  devJwks: join(dataDir, 'dev-jwks.json'),
});

export async function loadOrCreateKeys(dataDir: string): Promise<PlatformKeys> {
  const file = join(dataDir, 'keys.json');
  let keys: PlatformKeys;
  if (existsSync(file)) keys = JSON.parse(await readFile(file, 'utf8')) as PlatformKeys;
  else {
    keys = { context: await generateContextKeyPair(), devIssuer: await generateDevIssuer() };
    await mkdir(dataDir, { recursive: true });
    await writeFile(file, JSON.stringify(keys, null, 2), { mode: 0o600 });
  }
  // Each key alone, for the service processes (and for anyone configuring JWKS_FILE against the development issuer).
  const files = keyFiles(dataDir);
  if (!existsSync(files.contextPrivate)) await writeFile(files.contextPrivate, JSON.stringify(keys.context.privateJwk), { mode: 0o600 });
  if (!existsSync(files.contextPublic)) await writeFile(files.contextPublic, JSON.stringify(keys.context.publicJwk));
  if (!existsSync(files.devJwks)) await writeFile(files.devJwks, JSON.stringify(keys.devIssuer.jwks, null, 2));
  return keys;
}

export interface DevTokenOptions {
  tenantId: string;
  subject?: string;
  tenantClaim?: string;
  expiresIn?: string;
}

export async function issueDevToken(keys: PlatformKeys, options: DevTokenOptions): Promise<string> {
  const key = await importJWK(keys.devIssuer.privateJwk, DEV_ALGORITHM);
  return new SignJWT({ [options.tenantClaim ?? 'tenant_id']: options.tenantId })
    .setProtectedHeader({ alg: DEV_ALGORITHM, kid: keys.devIssuer.privateJwk.kid, typ: 'JWT' })
    .setIssuer(DEV_ISSUER)
    .setAudience(DEV_AUDIENCE)
    .setSubject(options.subject ?? 'dev-user')
    .setIssuedAt()
    .setExpirationTime(options.expiresIn ?? '1h')
    .sign(key);
}

/** The development issuer as the gateway's caller verification takes it. */
export const devIssuerOf = (keys: PlatformKeys) => ({ issuer: DEV_ISSUER, audience: DEV_AUDIENCE, jwks: keys.devIssuer.jwks });
