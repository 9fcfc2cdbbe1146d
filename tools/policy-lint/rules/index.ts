/** Every policy rule, in the order the issues list them. */
import type { PolicyRule } from '../catalog.ts';
import { rlsNotEnabled } from './rls-not-enabled.ts';
import { rlsNotForced } from './rls-not-forced.ts';
import { rlsWithoutPolicy } from './rls-without-policy.ts';
import { commandNotCovered } from './command-not-covered.ts';
import { permissiveEscape } from './permissive-escape.ts';
import { multiplePermissive } from './multiple-permissive.ts';
import { perRowSetting } from './per-row-setting.ts';
import { privilegedAppRole } from './privileged-app-role.ts';
import { foreignKeyWithoutTenant } from './foreign-key-without-tenant.ts';
import { keyNotLeadingTenant } from './key-not-leading-tenant.ts';
import { noTenantIndex } from './no-tenant-index.ts';
import { viewNotSecurityInvoker } from './view-not-security-invoker.ts';
import { unsafeFunction } from './unsafe-function.ts';
import { appRoleTruncateReferences } from './app-role-truncate-references.ts';
import { appRoleCanLockTables } from './app-role-can-lock-tables.ts';
import { appRoleSettingsNotPinned } from './app-role-settings-not-pinned.ts';
import { appRoleSeesOtherSessions } from './app-role-sees-other-sessions.ts';
import { serverBelowPatchFloor } from './server-below-patch-floor.ts';

export const rules: PolicyRule[] = [
  rlsNotEnabled,
  rlsNotForced,
  rlsWithoutPolicy,
  commandNotCovered,
  permissiveEscape,
  multiplePermissive,
  perRowSetting,
  privilegedAppRole,
  foreignKeyWithoutTenant,
  keyNotLeadingTenant,
  noTenantIndex,
  viewNotSecurityInvoker,
  unsafeFunction,
  appRoleTruncateReferences,
  appRoleCanLockTables,
  appRoleSettingsNotPinned,
  appRoleSeesOtherSessions,
  serverBelowPatchFloor,
];
