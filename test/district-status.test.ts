/** The gateway serves only ACTIVE, registered districts. */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demo, startTestPlatform, type TestPlatform } from './support/platform.ts';

let platform: TestPlatform;
beforeAll(async () => {
  platform = await startTestPlatform({ districtStatusTtlMs: 0 });
});
afterAll(() => platform?.stop());

async function setStatus(slug: 'east-lake', status: string) {
  const owner = await platform.connect(platform.databases.districts!.ownerUrl);
  await owner.query('update district set status = $1 where tenant_id = $2', [status, demo(slug).tenantId]);
}

describe('district status', () => {
  it.each([
    ['suspended', 'district is suspended'],
    ['migrating', 'district is being migrated, try again later'],
  ])('a %s district is refused with 403 and no data', async (status, message) => {
    await setStatus('east-lake', status);
    try {
      const { status: http, body } = await platform.as('east-lake', '{ district { name } students(first: 1) { edges { node { id } } } }');
      expect(http).toBe(403);
      expect(body).toEqual({ errors: [{ message, extensions: { code: 'FORBIDDEN' } }] });
    } finally {
      await setStatus('east-lake', 'active');
    }
    expect((await platform.as('east-lake', '{ district { status } }')).body.data.district.status).toBe('ACTIVE');
  });

  it('a valid token for a district that is not registered is refused', async () => {
    const { status, body } = await platform.as(randomUUID(), '{ students(first: 1) { edges { node { id } } } }');
    expect(status).toBe(403);
    expect(body.errors?.[0]).toEqual({ message: 'district is not registered', extensions: { code: 'FORBIDDEN' } });
  });
});
