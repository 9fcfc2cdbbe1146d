/** The examples of docs/errors.md, as the tests that produce each code read them. */
import { readFileSync } from 'node:fs';
import { projectPath } from '../../config/registry.ts';

export interface Answer {
  status: number;
  body: { data?: unknown; errors?: { message: string; path?: unknown; extensions?: { code?: string } }[] };
}

/** `### CODE` headings of docs/errors.md, each followed by an ```http block: `HTTP/1.1 <status> …`, a blank line, JSON. */
export function documentedExamples(): Map<string, Answer> {
  const text = readFileSync(projectPath('docs/errors.md'), 'utf8');
  const examples = new Map<string, Answer>();
  for (const match of text.matchAll(/^### `([A-Z_]+)`[^\n]*\n[\s\S]*?```http\nHTTP\/1\.1 (\d{3})[^\n]*\n(?:[^\n]+\n)*\n([\s\S]*?)```/gm)) {
    examples.set(match[1]!, { status: Number(match[2]), body: JSON.parse(match[3]!) as Answer['body'] });
  }
  return examples;
}

/**
 * Codes whose answers need a fault injected into the database (a lost connection, a timeout): produced, and checked
 * against their examples here, by test/faults/transaction-faults.test.ts rather than by test/errors-doc.test.ts.
 */
export const FAULT_CODES = ['DATABASE_UNAVAILABLE', 'DATABASE_BUSY', 'COMMIT_OUTCOME_UNKNOWN'];
