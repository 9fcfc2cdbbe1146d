/**
 * "Why can't this district see this row?" answered from the catalog and the data, as the owner (BYPASSRLS,
 * so it sees every district's rows): does the row exist, which district owns it, are RLS and FORCE on, which
 * policies apply, and what each evaluates to for the asking district. Never reachable through the graph.
 */
import { escapeIdentifier } from 'pg';
import type { ServiceDatabase } from '../../database/database.ts';
import { withClient } from '../operator-cli.ts';
import { isUuid } from '../../tenancy/tenant-context.ts';
import { directoryService } from '../../config/registry.ts';

export interface PolicyVerdict {
  name: string;
  permissive: boolean;
  command: string;
  roles: string[];
  using: string | null;
  withCheck: string | null;
  /** USING / WITH CHECK evaluated on the row with the asking district's tenant set (null: no row or no clause). */
  usingForTenant: boolean | null;
  withCheckForTenant: boolean | null;
}

export interface Explanation {
  database: string;
  table: string;
  id: string;
  tenant: { id: string; district: { name: string; status: string } | null };
  rls: { enabled: boolean; forced: boolean };
  /** Districts holding a row with this id (ids are unique per district only). */
  owners: { tenantId: string; district: string | null }[];
  policies: PolicyVerdict[];
  visible: boolean;
  reasons: string[];
}

export class ExplainError extends Error {}

const COMMANDS: Record<string, string> = { r: 'SELECT', a: 'INSERT', w: 'UPDATE', d: 'DELETE', '*': 'ALL' };

interface TableMatch {
  database: ServiceDatabase;
  oid: number;
  qualified: string;
  schema: string;
  name: string;
  keyColumn: string;
}

/** The tenant table called `table` (`name` or `schema.name`), searched in every service database. */
async function findTable(databases: ServiceDatabase[], table: string): Promise<TableMatch> {
  const [schema, name] = table.includes('.') ? table.split('.', 2) : [null, table];
  const matches: TableMatch[] = [];
  for (const database of databases) {
    const { rows } = await withClient(database.ownerUrl, (client) =>
      client.query<{ oid: number; qualified: string; schema: string; name: string; has_id: boolean; key: string[] }>(
        `select c.oid::int as oid, format('%I.%I', n.nspname, c.relname) as qualified, n.nspname as schema, c.relname as name,
                exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'id' and not a.attisdropped) as has_id,
                array(select a.attname::text from pg_index i cross join unnest(i.indkey) k(attnum) join pg_attribute a on a.attrelid = c.oid and a.attnum = k.attnum
                       where i.indrelid = c.oid and i.indisprimary) as key
           from pg_class c join pg_namespace n on n.oid = c.relnamespace
          where c.relname = $1 and ($2::text is null or n.nspname = $2) and c.relkind in ('r', 'p')
            and exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped)`,
        [name, schema],
      ),
    );
    for (const row of rows) {
      // Tables keyed by (tenant_id, id) are looked up by id; the district table is keyed by tenant_id alone.
      const keyColumn = row.has_id ? 'id' : row.key.length === 1 && row.key[0] === 'tenant_id' ? 'tenant_id' : null;
      if (!keyColumn) throw new ExplainError(`${row.qualified} has no id column; its key is (${row.key.join(', ')})`);
      matches.push({ database, oid: row.oid, qualified: row.qualified, schema: row.schema, name: row.name, keyColumn });
    }
  }
  if (matches.length === 0) throw new ExplainError(`no tenant table named ${table} in ${databases.map((d) => d.database).join(', ')}`);
  if (matches.length > 1)
    throw new ExplainError(
      `${table} names tables in ${matches.map((m) => `${m.database.database} (${m.qualified})`).join(', ')}; qualify it`,
    );
  return matches[0]!;
}

async function districtNames(databases: ServiceDatabase[], tenantIds: string[]): Promise<Map<string, { name: string; status: string }>> {
  const directory = databases.find((d) => d.service === directoryService().name);
  if (!directory || tenantIds.length === 0) return new Map();
  const { rows } = await withClient(directory.ownerUrl, (client) =>
    client.query<{ tenant_id: string; name: string; status: string }>(
      'select tenant_id::text, name, status from district where tenant_id = any($1::uuid[])',
      [tenantIds],
    ),
  );
  return new Map(rows.map((row) => [row.tenant_id, { name: row.name, status: row.status }]));
}

export async function explainRow(
  databases: ServiceDatabase[],
  request: { tenantId: string; table: string; id: string },
): Promise<Explanation> {
  if (!isUuid(request.tenantId)) throw new ExplainError('--tenant must be a district UUID');
  if (!isUuid(request.id)) throw new ExplainError('--id must be a UUID');
  const tenantId = request.tenantId.toLowerCase();
  const id = request.id.toLowerCase();
  const match = await findTable(databases, request.table);

  const found = await withClient(match.database.ownerUrl, async (client) => {
    // Names from the catalog (findTable), quoted here; the id is a parameter.
    const table = `${escapeIdentifier(match.schema)}.${escapeIdentifier(match.name)}`;
    const key = escapeIdentifier(match.keyColumn);
    const { rows: flags } = await client.query<{ enabled: boolean; forced: boolean }>(
      'select relrowsecurity as enabled, relforcerowsecurity as forced from pg_class where oid = $1',
      [match.oid],
    );
    const owners = (
      await client.query<{ tenant_id: string }>(`select tenant_id::text from ${table} where ${key} = $1 order by 1`, [id])
    ).rows.map((r) => r.tenant_id);
    const { rows: policies } = await client.query<{
      name: string;
      permissive: boolean;
      command: string;
      roles: string[];
      using: string | null;
      check: string | null;
    }>(
      `select p.polname as name, p.polpermissive as permissive, p.polcmd as command,
              array(select case when r = 0 then 'public' else pg_get_userbyid(r)::text end from unnest(p.polroles) r) as roles,
              pg_get_expr(p.polqual, p.polrelid) as using, pg_get_expr(p.polwithcheck, p.polrelid) as check
         from pg_policy p where p.polrelid = $1 order by p.polname`,
      [match.oid],
    );
    // The policy expressions come from the catalog (written by migrations, never by a caller). They are evaluated on the
    // row in a read-only transaction with the asking district's tenant set, exactly as the application role would have it.
    const verdicts: PolicyVerdict[] = [];
    await client.query('begin read only');
    try {
      await client.query("select set_config('app.current_tenant', $1, true)", [tenantId]);
      for (const policy of policies) {
        const evaluate = async (expression: string | null) => {
          if (!expression || owners.length === 0) return null;
          const query = `select bool_or(coalesce((${expression}), false)) as result from ${table} where ${key} = $1`;
          return (await client.query<{ result: boolean }>(query, [id])).rows[0]!.result;
        };
        verdicts.push({
          name: policy.name,
          permissive: policy.permissive,
          command: COMMANDS[policy.command] ?? policy.command,
          roles: policy.roles,
          using: policy.using,
          withCheck: policy.check,
          usingForTenant: await evaluate(policy.using),
          withCheckForTenant: await evaluate(policy.check),
        });
      }
    } finally {
      await client.query('rollback');
    }
    return { rls: flags[0]!, owners, verdicts };
  });

  const names = await districtNames(databases, [...new Set([tenantId, ...found.owners])]);
  const reads = found.verdicts.filter((p) => p.command === 'SELECT' || p.command === 'ALL');
  const permitted =
    reads.some((p) => p.permissive && p.usingForTenant) && reads.filter((p) => !p.permissive).every((p) => p.usingForTenant);
  const visible = found.owners.length > 0 && (!found.rls.enabled || permitted);
  const reasons: string[] = [];
  const district = names.get(tenantId) ?? null;
  if (!district) reasons.push(`district ${tenantId} is not registered: the gateway refuses it before any lookup`);
  else if (district.status !== 'active') reasons.push(`district ${tenantId} is ${district.status}: the gateway refuses its requests`);
  if (found.owners.length === 0) reasons.push(`no row of ${match.qualified} has ${match.keyColumn} ${id}, in any district`);
  else if (!found.owners.includes(tenantId))
    reasons.push(
      `the row belongs to ${found.owners.map((t) => `${names.get(t)?.name ?? 'an unregistered district'} (${t})`).join(', ')}, not to ${tenantId}`,
    );
  if (!found.rls.enabled)
    reasons.push(`row-level security is NOT enabled on ${match.qualified}: every role with SELECT sees every district's rows`);
  else if (!found.rls.forced) reasons.push(`row-level security is not forced on ${match.qualified}: its owner sees every district's rows`);
  if (found.rls.enabled && reads.length === 0)
    reasons.push(`no policy covers SELECT on ${match.qualified}: nobody subject to RLS sees any row`);
  for (const policy of reads)
    if (policy.usingForTenant !== null)
      reasons.push(
        `policy ${policy.name} (${policy.permissive ? 'permissive' : 'restrictive'}, ${policy.command}) USING evaluates to ${policy.usingForTenant} for ${tenantId}`,
      );
  reasons.push(
    visible
      ? `${tenantId} can see this row through the graph${district?.status === 'active' ? '' : ' once the district is active'}`
      : `${tenantId} cannot see this row`,
  );

  return {
    database: match.database.database,
    table: match.qualified,
    id,
    tenant: { id: tenantId, district },
    rls: found.rls,
    owners: found.owners.map((t) => ({ tenantId: t, district: names.get(t)?.name ?? null })),
    policies: found.verdicts,
    visible,
    reasons,
  };
}

/** The explanation as an operator reads it. */
export function formatExplanation(e: Explanation): string {
  const yesNo = (value: boolean) => (value ? 'yes' : 'no');
  const lines = [
    `table:      ${e.table} (${e.database})`,
    `row:        ${e.id}`,
    `asked by:   ${e.tenant.id}${e.tenant.district ? ` — ${e.tenant.district.name} (${e.tenant.district.status})` : ' — not registered'}`,
    `exists:     ${e.owners.length ? `yes, owned by ${e.owners.map((o) => `${o.district ?? 'unregistered district'} (${o.tenantId})`).join(', ')}` : 'no'}`,
    `RLS:        enabled ${yesNo(e.rls.enabled)}, forced ${yesNo(e.rls.forced)}`,
    'policies:',
    ...(e.policies.length
      ? e.policies.map(
          (p) =>
            `  ${p.name} [${p.permissive ? 'permissive' : 'restrictive'} ${p.command} to ${p.roles.join(', ')}]\n` +
            `    USING      ${p.using ?? '(none)'} → ${p.usingForTenant ?? 'n/a'}\n` +
            `    WITH CHECK ${p.withCheck ?? '(none)'} → ${p.withCheckForTenant ?? 'n/a'}`,
        )
      : ['  (none)']),
    `visible:    ${yesNo(e.visible)}`,
    'why:',
    ...e.reasons.map((reason) => `  - ${reason}`),
  ];
  return lines.join('\n');
}
