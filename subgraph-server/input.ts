/** Validation of mutation input: a clear BAD_USER_INPUT before anything reaches SQL. */
import { badInput } from '../http/errors.ts';
import { isUuid } from '../tenancy/tenant-context.ts';

export function requiredText(value: unknown, field: string, maxLength: number): string {
  const text = typeof value === 'string' ? value.trim() : '';
  if (!text) throw badInput(`${field} must not be empty`);
  if (text.length > maxLength) throw badInput(`${field} must be at most ${maxLength} characters`);
  return text;
}

export function optionalText(value: unknown, field: string, maxLength: number): string | undefined {
  return value === undefined || value === null ? undefined : requiredText(value, field, maxLength);
}

export function requiredId(value: unknown, field: string): string {
  if (!isUuid(value)) throw badInput(`${field} must be an id returned by this API`);
  return value;
}

export function gradeLevel(value: unknown, field = 'grade'): number {
  // -1 is pre-kindergarten, 0 kindergarten, 1-12 the grades.
  if (!Number.isInteger(value) || (value as number) < -1 || (value as number) > 12) {
    throw badInput(`${field} must be an integer from -1 (pre-K) to 12`);
  }
  return value as number;
}

export function isoDate(value: unknown, field: string): string {
  if (typeof value !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(value) || Number.isNaN(Date.parse(`${value}T00:00:00Z`))) {
    throw badInput(`${field} must be a date written YYYY-MM-DD`);
  }
  if (new Date(`${value}T00:00:00Z`).toISOString().slice(0, 10) !== value) throw badInput(`${field} is not a real date`);
  return value;
}

/** A list's `first` argument: an integer from 1 to `max` (the SDL gives every list a default). */
export function listSize(value: unknown, max: number, field = 'first'): number {
  if (!Number.isInteger(value) || (value as number) < 1 || (value as number) > max) throw badInput(`${field} must be from 1 to ${max}`);
  return value as number;
}
