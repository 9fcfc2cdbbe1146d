/** Demo data: the district itself and three schools (the audit trail is the operator CLI's alone). Publishes `school`, its school ids by name. */
import type { DemoSeed } from '../../subgraph-server/demo.ts';
import { District, School } from './entities.ts';

export const demo: DemoSeed = async (em, { district, label }) => {
  if (!(await em.findOne(District, { tenantId: district.tenantId }))) {
    em.create(District, { name: district.name, slug: district.slug, status: 'active' });
    for (const kind of ['Elementary', 'Middle', 'High']) em.create(School, { name: `${label} ${kind} School` });
  }
  const schools = await em.find(School, {}, { orderBy: { name: 'asc' } });
  return { school: schools.map((school) => school.id) };
};
