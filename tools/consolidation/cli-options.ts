/** Option parsers shared by the consolidation CLIs (commander). */
import { InvalidArgumentError } from 'commander';
import { SERVICES, type Service } from './tables.ts';

export const positiveInt = (value: string): number => {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 1) throw new InvalidArgumentError('must be a positive integer');
  return number;
};

/** `all`, or a comma-separated list of slugs. */
export const districtList = (value: string): string[] | 'all' => {
  if (value === 'all') return 'all';
  const slugs = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (!slugs.length) throw new InvalidArgumentError('must be "all" or a comma-separated list of district slugs');
  return slugs;
};

/** `postgres://owner@host/k12_{service}` → one owner URL per service database. */
export function targetUrls(template: string): Record<Service, string> {
  if (!template.includes('{service}'))
    throw new Error('--target must be a postgres:// URL of the owner role whose database name contains {service}');
  return Object.fromEntries(SERVICES.map((service) => [service, template.replace('{service}', service)]));
}
