import { APP_ROLE_SETTINGS } from '../../../database/app-role-settings.ts';
import { appRoleSessionDefaults, type PolicyRule, type RawFinding } from '../catalog.ts';

/** track_activities is app-role-sees-other-sessions' to check. */
const PINNED = Object.entries(APP_ROLE_SETTINGS).filter(([name]) => name !== 'track_activities');

export const appRoleSettingsNotPinned: PolicyRule = {
  name: 'app-role-settings-not-pinned',
  rationale: "An application role's session defaults must be exactly the pinned timeouts: the role may rewrite its own defaults.",
  async check(target) {
    const findings: RawFinding[] = [];
    for (const [role, defaults] of await appRoleSessionDefaults(target)) {
      for (const [name, pinned] of PINNED) {
        const actual = defaults.get(name);
        if (actual === undefined) findings.push({ object: role, detail: `${name} is not pinned (provisioning sets ${pinned})` });
        else if (actual !== pinned)
          findings.push({ object: role, detail: `${name} is ${actual} for its sessions here, not the pinned ${pinned}` });
      }
      for (const [name, value] of defaults) {
        if (!(name in APP_ROLE_SETTINGS))
          findings.push({ object: role, detail: `sets ${name}=${value} for its own sessions (only the pinned settings belong there)` });
      }
    }
    return findings.sort((a, b) => `${a.object} ${a.detail}`.localeCompare(`${b.object} ${b.detail}`));
  },
};
