/** The service registry (schema/subgraphs.json): its checks, its layout, and the lookups tools use instead of service names. */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directoryService, formattedRegistry, readRegistry, REGISTRY_PATH, serviceOwning, tablesOf } from '../config/registry.ts';
import { loadSubgraphs } from '../subgraph-server/registry.ts';
import { withTenantForeignKeys } from '../tenancy/tenant-table.ts';

let folder: string;
beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'k12-registry-'));
});
afterAll(() => rm(folder, { recursive: true, force: true }));

/** The committed registry with `change` applied, written to a scratch file; returns its path. */
async function variant(name: string, change: (registry: { subgraphs: Record<string, unknown>[] }) => void): Promise<string> {
  const registry = JSON.parse(await readFile(REGISTRY_PATH, 'utf8'));
  change(registry);
  const path = join(folder, `${name}.json`);
  await writeFile(path, JSON.stringify(registry));
  return path;
}

describe('service registry', () => {
  it('is committed in the layout subgraph:new writes (an appended entry diffs as one block)', async () => {
    expect(formattedRegistry()).toBe(await readFile(REGISTRY_PATH, 'utf8'));
  });

  it('refuses a registry without exactly one directory, or with a port variable twice', async () => {
    const none = await variant('none', (r) => r.subgraphs.forEach((s) => delete s.directory));
    expect(() => readRegistry(none)).toThrow(/exactly one subgraph must be the district directory \("directory": true\); found none/);
    const two = await variant('two', (r) => r.subgraphs.forEach((s) => (s.directory = true)));
    expect(() => readRegistry(two)).toThrow(/exactly one subgraph must be the district directory/);
    const sameEnv = await variant('same-env', (r) => (r.subgraphs[1]!.port = { ...(r.subgraphs[0]!.port as object), default: 4999 }));
    expect(() => readRegistry(sameEnv)).toThrow(/port variables repeated/);
  });

  it("finds a table's service in the migration snapshots, and names the registered services when none has it", () => {
    const entries = readRegistry();
    expect(entries.every((entry) => tablesOf(entry).length > 0)).toBe(true);
    for (const entry of entries) for (const table of tablesOf(entry)) expect(serviceOwning(table).name).toBe(entry.name);
    expect(tablesOf(directoryService())).toContain('district');
    expect(() => serviceOwning('no_such_table')).toThrow(
      `no registered service (${entries.map((s) => s.name).join(', ')}) has a table "no_such_table"`,
    );
  });

  it('declares composite foreign keys for the schema generator only: the runtime entities keep no relation', async () => {
    const withKeys = (await loadSubgraphs()).filter((s) => s.foreignKeys?.length);
    expect(withKeys.length).toBeGreaterThan(0);
    for (const { entities, foreignKeys } of withKeys) {
      const generated = withTenantForeignKeys(entities, foreignKeys!);
      for (const fk of foreignKeys!) {
        const copy = generated.find((e) => e.meta.className === fk.entity.meta.className)!;
        expect(copy).not.toBe(fk.entity);
        expect(copy.meta.properties[`${fk.property}ForeignKey`]).toMatchObject({
          kind: 'm:1',
          deferMode: 'deferred',
          foreignKeyName: fk.name,
        });
        expect(Object.keys(fk.entity.meta.properties)).not.toContain(`${fk.property}ForeignKey`);
      }
    }
  });
});
