import { defineEntity, p } from '@mikro-orm/postgresql';
import { tenantKey, tenantTable, type TenantForeignKey } from '../../tenancy/tenant-table.ts';

export const Student = defineEntity({
  name: 'Student',
  ...tenantTable,
  indexes: [
    { properties: ['tenantId', 'lastName', 'firstName', 'id'] },
    { properties: ['tenantId', 'grade', 'lastName', 'firstName', 'id'] },
    { properties: ['tenantId', 'schoolId'] },
  ],
  properties: {
    ...tenantKey(),
    firstName: p.string().length(100),
    lastName: p.string().length(100),
    grade: p.smallint(),
    dateOfBirth: p.date().nullable(),
    /** A school of the districts service: another database, so no foreign key can hold it. */
    schoolId: p.uuid(),
    /** Grade point average, carried over from the legacy districts (0.00–9.99). */
    gpa: p.decimal().precision(3).scale(2).nullable(),
    /** The district's own integer id before consolidation (NULL for rows created here): auditors name rows by it. */
    legacyId: p.integer().nullable(),
    createdAt: p
      .datetime()
      .defaultRaw('now()')
      .onCreate(() => new Date()),
  },
});

export const Enrollment = defineEntity({
  name: 'Enrollment',
  ...tenantTable,
  indexes: [{ properties: ['tenantId', 'studentId'] }],
  properties: {
    ...tenantKey(),
    /** (tenant_id, student_id) → student: see foreignKeys. */
    studentId: p.uuid(),
    schoolId: p.uuid(),
    startDate: p.date(),
    endDate: p.date().nullable(),
    /** The district's own integer id before consolidation (NULL for rows created here): auditors name rows by it. */
    legacyId: p.integer().nullable(),
  },
});

export const entities = [Student, Enrollment];

/** Composite foreign keys (for the schema generator only: see withTenantForeignKeys). */
export const foreignKeys: TenantForeignKey[] = [
  { entity: Enrollment, property: 'studentId', references: Student, name: 'enrollment_student_fk', onDelete: 'cascade' },
];
