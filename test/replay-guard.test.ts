/** A subgraph accepts each tenant context once; when its memory of accepted contexts is full it refuses, never forgets. */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  createTenantContextSigner,
  createTenantContextVerifier,
  generateContextKeyPair,
  ReplayGuard,
  TenantContextError,
} from '../tenancy/tenant-context.ts';

describe('replay guard', () => {
  it('accepts a jti once and refuses it again until it expires', () => {
    const guard = new ReplayGuard(10);
    expect(guard.accept('a', 2000, 1000)).toBe('accepted');
    expect(guard.accept('a', 2000, 1999)).toBe('replayed');
    // Expired: forgotten (the verifier refuses an expired context before it gets here).
    expect(guard.accept('a', 4000, 2001)).toBe('accepted');
  });

  it('full of unexpired contexts, it refuses new ones and still remembers every accepted one; an expiry makes room', () => {
    const guard = new ReplayGuard(2);
    expect(guard.accept('a', 2000, 1000)).toBe('accepted');
    expect(guard.accept('b', 3000, 1000)).toBe('accepted');
    expect(guard.accept('c', 3000, 1500)).toBe('full');
    expect(guard.accept('a', 2000, 1500)).toBe('replayed');
    expect(guard.accept('b', 3000, 1500)).toBe('replayed');
    expect(guard.accept('c', 4000, 2001)).toBe('accepted');
    expect(guard.accept('b', 3000, 2001)).toBe('replayed');
    expect(guard.accept('d', 4000, 2001)).toBe('full');
  });

  it('a subgraph verifier at capacity refuses a valid context with "too many tenant contexts in flight", without using it up', async () => {
    const keys = await generateContextKeyPair();
    const sign = await createTenantContextSigner(keys.privateJwk);
    const verify = await createTenantContextVerifier(keys.publicJwk, 'students', new ReplayGuard(2));
    const tenantId = randomUUID();
    const context = () => sign({ tenantId, subject: 'replay-test', requestId: randomUUID() }, 'students');
    const [first, second, third] = [await context(), await context(), await context()];
    await expect(verify(first, tenantId)).resolves.toMatchObject({ tenantId });
    await expect(verify(second, undefined)).resolves.toMatchObject({ tenantId });
    const refused = verify(third, tenantId);
    await expect(refused).rejects.toThrow(TenantContextError);
    await expect(refused).rejects.toThrow('too many tenant contexts in flight');
    // The accepted ones are still remembered: a replay is refused as such.
    await expect(verify(first, tenantId)).rejects.toThrow('replayed tenant context');
  });
});
