import { readFileSync } from 'node:fs';
import pg from 'pg';
import { initOrm } from './subgraphs/kit/orm.ts';
import { districts } from './subgraphs/index.ts';
import { inTenantTransaction } from './subgraphs/kit/tenancy.ts';
import { District } from './subgraphs/districts/entities.ts';
const secrets = JSON.parse(readFileSync('.data/secrets.json', 'utf8'));
const url = `postgres://k12_districts_app:${secrets.rolePasswords.k12_districts_app}@127.0.0.1:54329/k12_districts`;
const tid = '3f6c1a52-9a7e-4c1e-8f0a-1b2c3d4e5f60';
const time = async (label: string, fn: () => Promise<unknown>) => {
  for (let i = 0; i < 50; i++) await fn();
  const lat: number[] = [];
  for (let i = 0; i < 500; i++) { const t = performance.now(); await fn(); lat.push(performance.now() - t); }
  lat.sort((a, b) => a - b);
  console.log(label, 'p50', lat[250]!.toFixed(3), 'p95', lat[475]!.toFixed(3));
};
const c = new pg.Client(url); await c.connect();
await time('raw select', () => c.query('select 1'));
await time('raw tx', async () => { await c.query('begin'); await c.query("select set_config('app.current_tenant', $1, true)", [tid]); await c.query('select * from district where tenant_id = $1', [tid]); await c.query('commit'); });
const orm = await initOrm({ service: 'districts', entities: districts.entities, clientUrl: url });
await time('orm tx', () => inTenantTransaction(orm, tid, (em) => em.findOne(District, { tenantId: tid })));
await time('orm tx empty', () => inTenantTransaction(orm, tid, async () => 1));
await c.end(); await orm.close();
