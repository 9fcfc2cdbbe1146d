/**
 * Headers a client controls: the gateway forwards none of them, and a subgraph opens a tenant only for a
 * context the gateway signed for it, once, unexpired, agreeing with any x-tenant-id beside it.
 */
import { request } from 'node:http';
import { randomUUID } from 'node:crypto';
import { SignJWT, importJWK } from 'jose';
import { describe, expect } from 'vitest';
import {
  createTenantContextSigner,
  generateContextKeyPair,
  TENANT_CONTEXT_HEADER,
  TENANT_ID_HEADER,
} from '../../tenancy/tenant-context.ts';
import { attack, expectRefusal, expectServedWithoutForeignData, NORTH, SOUTH, type Battery } from './harness.ts';

const STUDENTS = '{ students(first: 100) { edges { node { id firstName } } } }';

export function headerSpoofingAttacks(battery: Battery): void {
  const asNorth = async (headers: Record<string, string>) =>
    battery.platform.graphql(
      { query: `{ district { id name } ${STUDENTS.slice(1, -1)} }` },
      { token: await battery.platform.token('north-valley'), headers },
    );
  const toStudents = (headers: Record<string, string>) =>
    battery.platform.graphql({ query: STUDENTS }, { url: battery.platform.subgraphs.students!.url, headers });
  const servedAsNorth = (result: Awaited<ReturnType<typeof asNorth>>) => {
    expectServedWithoutForeignData(result);
    expect(result.body.data.district.id).toBe(NORTH);
    expect(result.body.data.students.edges).toHaveLength(battery.keys(NORTH, 'student').length);
  };
  /** Sends each header value on its own line (fetch would join them into one). */
  const rawHeaders = (url: string, headers: Record<string, string | string[]>) =>
    new Promise<{ status: number; body: any; text: string }>((resolve, reject) => {
      const req = request(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers } }, (res) => {
        let text = '';
        res.on('data', (chunk) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode!, text, body: JSON.parse(text) }));
      });
      req.on('error', reject);
      req.end(JSON.stringify({ query: STUDENTS }));
    });

  describe('header spoofing', () => {
    attack('client-sent x-tenant-id naming another district is ignored by the gateway', async () => {
      servedAsNorth(await asNorth({ [TENANT_ID_HEADER]: SOUTH }));
    });

    attack('client-sent x-tenant-context (genuinely signed for another district) is overwritten by the gateway', async () => {
      servedAsNorth(await asNorth({ [TENANT_CONTEXT_HEADER]: await battery.sign(SOUTH, 'students'), [TENANT_ID_HEADER]: SOUTH }));
    });

    attack('two Authorization headers in one header (comma-joined) are refused', async () => {
      const [north, south] = [await battery.platform.token('north-valley'), await battery.platform.token('south-ridge')];
      const result = await battery.platform.graphql(
        { query: STUDENTS },
        { headers: { authorization: `Bearer ${north}, Bearer ${south}` } },
      );
      expectRefusal(result, 401, 'authorization header must be "Bearer <JWT>"', 'UNAUTHENTICATED');
    });

    attack('two Authorization lines: only the first is used, and it is verified like any other', async () => {
      const result = await rawHeaders(battery.platform.gateway.url, {
        authorization: [`Bearer ${await battery.platform.token('north-valley')}`, `Bearer ${await battery.platform.token('south-ridge')}`],
      });
      expectServedWithoutForeignData({ ...result, body: result.body });
      expect(result.body.data.students.edges.map((e: any) => e.node.id).sort()).toEqual([...battery.keys(NORTH, 'student')].sort());
    });

    attack('duplicate x-tenant-id lines at a subgraph (own, then foreign) are refused', async () => {
      const result = await rawHeaders(battery.platform.subgraphs.students!.url, {
        [TENANT_CONTEXT_HEADER]: await battery.sign(NORTH, 'students'),
        [TENANT_ID_HEADER]: [NORTH, SOUTH],
      });
      expectRefusal(result, 401, 'tenant header does not match tenant context', 'UNAUTHENTICATED');
    });

    attack('duplicate x-tenant-context lines at a subgraph (own, then foreign) are refused', async () => {
      const result = await rawHeaders(battery.platform.subgraphs.students!.url, {
        [TENANT_CONTEXT_HEADER]: [await battery.sign(NORTH, 'students'), await battery.sign(SOUTH, 'students')],
      });
      expectRefusal(result, 401, 'invalid tenant context', 'UNAUTHENTICATED');
    });

    attack('x-tenant-id alone at a subgraph is refused', async () => {
      expectRefusal(await toStudents({ [TENANT_ID_HEADER]: SOUTH }), 401, 'missing tenant context', 'UNAUTHENTICATED');
    });

    attack("a subgraph context forged with another key under the gateway's kid is refused", async () => {
      const forger = await createTenantContextSigner({
        ...(await generateContextKeyPair()).privateJwk,
        kid: battery.platform.keys.context.privateJwk.kid,
      });
      const forged = await forger({ tenantId: SOUTH, subject: 'attacker', requestId: randomUUID() }, 'students');
      expectRefusal(await toStudents({ [TENANT_CONTEXT_HEADER]: forged }), 401, 'invalid tenant context', 'UNAUTHENTICATED');
    });

    attack('an expired subgraph context is refused', async () => {
      const key = await importJWK(battery.platform.keys.context.privateJwk, 'EdDSA');
      const expired = await new SignJWT({ tid: SOUTH, rid: randomUUID() })
        .setProtectedHeader({ alg: 'EdDSA', kid: battery.platform.keys.context.privateJwk.kid })
        .setJti(randomUUID())
        .setIssuer('k12-gateway')
        .setAudience('students')
        .setSubject('attacker')
        .setIssuedAt(Math.floor(Date.now() / 1000) - 120)
        .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
        .sign(key);
      expectRefusal(await toStudents({ [TENANT_CONTEXT_HEADER]: expired }), 401, 'expired tenant context', 'UNAUTHENTICATED');
    });

    attack('a captured subgraph context replayed against the same subgraph is refused', async () => {
      const captured = await battery.sign(SOUTH, 'students');
      const first = await toStudents({ [TENANT_CONTEXT_HEADER]: captured });
      expect(first.status).toBe(200);
      expectRefusal(await toStudents({ [TENANT_CONTEXT_HEADER]: captured }), 401, 'replayed tenant context', 'UNAUTHENTICATED');
    });

    attack('a captured context for another subgraph is refused', async () => {
      expectRefusal(
        await toStudents({ [TENANT_CONTEXT_HEADER]: await battery.sign(SOUTH, 'staff') }),
        401,
        'invalid tenant context',
        'UNAUTHENTICATED',
      );
    });

    attack('a context for district A with x-tenant-id for district B is refused', async () => {
      const result = await toStudents({ [TENANT_CONTEXT_HEADER]: await battery.sign(NORTH, 'students'), [TENANT_ID_HEADER]: SOUTH });
      expectRefusal(result, 401, 'tenant header does not match tenant context', 'UNAUTHENTICATED');
    });

    attack('a used context of district B with a valid token of district A, straight to the subgraph, is refused', async () => {
      const captured = await battery.sign(SOUTH, 'students');
      await toStudents({ [TENANT_CONTEXT_HEADER]: captured });
      const result = await battery.platform.graphql(
        { query: STUDENTS },
        {
          url: battery.platform.subgraphs.students!.url,
          token: await battery.platform.token('north-valley'),
          headers: { [TENANT_CONTEXT_HEADER]: captured },
        },
      );
      expectRefusal(result, 401, 'replayed tenant context', 'UNAUTHENTICATED');
    });
  });
}
