import { defineEntity, p } from '@mikro-orm/postgresql';
import { tenantIdProperty, tenantKey, tenantTable, type TenantForeignKey } from '../../tenancy/tenant-table.ts';

export const STAFF_ROLES = ['teacher', 'counselor', 'administrator'] as const;

export const StaffMember = defineEntity({
  name: 'StaffMember',
  ...tenantTable,
  indexes: [{ properties: ['tenantId', 'lastName', 'firstName', 'id'] }],
  properties: {
    ...tenantKey(),
    firstName: p.string().length(100),
    lastName: p.string().length(100),
    email: p.string().length(200),
    role: p.enum([...STAFF_ROLES]),
    schoolId: p.uuid(),
    /** The district's own integer id before consolidation (NULL for rows created here): auditors name rows by it. */
    legacyId: p.integer().nullable(),
  },
});

export const Section = defineEntity({
  name: 'Section',
  ...tenantTable,
  indexes: [{ properties: ['tenantId', 'teacherId'] }],
  properties: {
    ...tenantKey(),
    name: p.string().length(200),
    subject: p.string().length(100),
    /** (tenant_id, teacher_id) → staff_member: see foreignKeys. */
    teacherId: p.uuid(),
    schoolId: p.uuid(),
    /** The district's own integer id before consolidation (NULL for rows created here): auditors name rows by it. */
    legacyId: p.integer().nullable(),
  },
});

/** A section's roster: student ids of the students service (another database, so no foreign key). */
export const SectionStudent = defineEntity({
  name: 'SectionStudent',
  ...tenantTable,
  properties: {
    tenantId: tenantIdProperty(),
    /** (tenant_id, section_id) → section: see foreignKeys. */
    sectionId: p.uuid().primary(),
    studentId: p.uuid().primary(),
  },
});

export const entities = [StaffMember, Section, SectionStudent];

/** Composite foreign keys (for the schema generator only: see withTenantForeignKeys). */
export const foreignKeys: TenantForeignKey[] = [
  { entity: Section, property: 'teacherId', references: StaffMember, name: 'section_teacher_fk' },
  { entity: SectionStudent, property: 'sectionId', references: Section, name: 'section_student_section_fk', onDelete: 'cascade' },
];
