/**
 * Demo districts for `npm start` and the tests. Each registered subgraph with a `demo.ts` seeds its own
 * tables (subgraph-server/demo.ts), in registry order, through the same tenant path as every request
 * (application role, one tenant transaction per district and service). Deterministic; a district already
 * seeded in a service is left alone.
 */
import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import type { MikroORM } from '@mikro-orm/postgresql';
import { projectPath, readRegistry } from '../config/registry.ts';
import type { DemoContext, DemoSeed } from '../subgraph-server/demo.ts';
import { inTenantTransaction } from '../tenancy/tenant-transaction.ts';

export const DEMO_DISTRICTS = [
  { slug: 'north-valley', name: 'North Valley Unified School District', tenantId: '3f6c1a52-9a7e-4c1e-8f0a-1b2c3d4e5f60' },
  { slug: 'south-ridge', name: 'South Ridge Public Schools', tenantId: '8b2d4e6f-1a3c-4e5f-9a7b-2c3d4e5f6071' },
  { slug: 'east-lake', name: 'East Lake County Schools', tenantId: 'c4e6f809-2b4d-4f60-8a1c-3d4e5f607182' },
] as const;

const FIRST_NAMES = [
  'Ava',
  'Liam',
  'Sofía',
  'Noah',
  'Zoë',
  'Mateo',
  'Amara',
  'Ethan',
  'Chloé',
  'Kai',
  'Mei',
  'Omar',
  'Isla',
  'Jonah',
  'Priya',
  'Lucas',
];
const LAST_NAMES = ['García', 'Nguyen', 'Smith', "O'Brien", 'Okafor', 'Kowalski', 'Haddad', 'Johansson', 'Patel', 'Müller', 'Kim', 'Rossi'];

/** A small seeded PRNG (mulberry32), so every run seeds the same names. */
function random(seed: string) {
  let state = [...seed].reduce((h, c) => Math.imul(h ^ c.charCodeAt(0), 16777619), 2166136261) >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The demo seed of every registered subgraph that has one, in registry order. */
async function loadDemoSeeds(): Promise<{ service: string; demo: DemoSeed }[]> {
  const seeds: { service: string; demo: DemoSeed }[] = [];
  for (const entry of readRegistry()) {
    const file = projectPath(`subgraphs/${entry.name}/demo.ts`);
    if (!existsSync(file)) continue;
    const module = (await import(pathToFileURL(file).href)) as { demo?: DemoSeed };
    if (typeof module.demo !== 'function') throw new Error(`subgraphs/${entry.name}/demo.ts must export its seed as \`demo\``);
    seeds.push({ service: entry.name, demo: module.demo });
  }
  return seeds;
}

/** Seeds the demo districts; `orms` holds each running subgraph's ORM (application role), by service name. */
export async function seedDemoDistricts(orms: Record<string, MikroORM>): Promise<void> {
  const seeds = await loadDemoSeeds();
  for (const district of DEMO_DISTRICTS) {
    const next = random(district.slug);
    const pick = <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)]!;
    const ids: Record<string, string[]> = {};
    const context: DemoContext = {
      district,
      label: district.slug
        .split('-')
        .map((w) => w[0]!.toUpperCase() + w.slice(1))
        .join(' '),
      random: next,
      pick,
      firstName: () => pick(FIRST_NAMES),
      lastName: () => pick(LAST_NAMES),
      ids,
    };
    for (const { service, demo } of seeds) {
      const orm = orms[service];
      if (!orm) throw new Error(`no running ${service} subgraph to seed`);
      Object.assign(ids, await inTenantTransaction(orm, district.tenantId, (em) => demo(em, context)));
    }
  }
}
