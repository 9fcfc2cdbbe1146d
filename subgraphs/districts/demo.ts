/** Demo data: the district itself, its onboarding in the audit trail and three schools. Publishes `school`, its school ids by name. */
import type { DemoSeed } from '../../subgraph-server/demo.ts';
import { District, DistrictEvent, School } from './entities.ts';

export const demo: DemoSeed = async (em, { district, label }) => {
  if (!(await em.findOne(District, { tenantId: district.tenantId }))) {
    em.create(District, { name: district.name, slug: district.slug, status: 'active' });
    em.create(DistrictEvent, { action: 'create', actor: 'demo', details: { slug: district.slug } });
    for (const kind of ['Elementary', 'Middle', 'High']) em.create(School, { name: `${label} ${kind} School` });
  }
  const schools = await em.find(School, {}, { orderBy: { name: 'asc' } });
  return { school: schools.map((school) => school.id) };
};
