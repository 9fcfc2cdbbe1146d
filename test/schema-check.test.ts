/**
 * `npm run schema:check` as a subgraph team runs it: the CLI in a child process, the real registry and
 * supergraph, proposed SDL files written to a scratch folder (`--subgraph name=file`).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT, projectPath } from '../config/registry.ts';
import type { SchemaCheckReport } from '../schema/check.ts';

const NODE = projectPath('node_modules/.bin/node');
const CLI = projectPath('schema/check.ts');
const STUDENTS_SDL = projectPath('subgraphs/students/schema.graphql');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

const runCheck = (...args: string[]) =>
  new Promise<Run>((resolve) => {
    execFile(NODE, [CLI, ...args], { cwd: PROJECT_ROOT, timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
    });
  });

const report = (run: Run) => JSON.parse(run.stdout) as SchemaCheckReport;

let scratch: string;
let studentsSdl: string;

/** Writes a proposed students SDL: the registered one with `from` replaced by `to` (which must occur). */
async function proposeStudents(from: string, to: string): Promise<string> {
  expect(studentsSdl).toContain(from);
  const file = join(scratch, `students-${Math.random().toString(36).slice(2)}.graphql`);
  await writeFile(file, studentsSdl.replace(from, to));
  return `students=${file}`;
}

const STUDENT_FIELDS = '  enrollments("How many enrolments to return: from 1 to 100." first: Int = 10): [Enrollment!]!\n}';
const STUDENTS_QUERY = '    after: String\n';

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'k12-schema-check-'));
  studentsSdl = await readFile(STUDENTS_SDL, 'utf8');
});
afterAll(() => rm(scratch, { recursive: true, force: true }));

describe('schema:check', () => {
  it('passes on the current SDL against the committed supergraph, validating every shipped operation', async () => {
    const shipped = (await readdir(projectPath('operations'))).filter((f) => f.endsWith('.graphql'));
    expect(shipped.length).toBeGreaterThan(0);
    const run = await runCheck('--json');
    expect(run.code).toBe(0);
    const result = report(run);
    expect(result).toMatchObject({ passed: true, changes: [], invalidOperations: [], compositionErrors: [] });
    expect(result.operationFiles).toBe(shipped.length);
    expect(result.operations).toBeGreaterThanOrEqual(shipped.length);
  });

  it('classifies a field added to a subgraph as safe and passes', async () => {
    const run = await runCheck('--subgraph', await proposeStudents(STUDENT_FIELDS, STUDENT_FIELDS.replace('}', '  nickname: String\n}')));
    expect(run.stdout).toMatch(/0 breaking, 0 dangerous, 1 safe change/);
    expect(run.stdout).toMatch(/SAFE +Student\.nickname: Field 'nickname' was added to object type 'Student'/);
    expect(run.stdout).toContain('schema check passed');
    expect(run.code).toBe(0);
  });

  it('--against a file: a copy of the committed supergraph without a field the subgraphs now have reads as that field added (safe)', async () => {
    const committed = await readFile(projectPath('schema/supergraph.graphql'), 'utf8');
    const deployedField = [
      '',
      '  """',
      "  The student's enrolments, oldest first: the first `first` of them (default 10, from 1 to 100).",
      '  """',
      '  enrollments(',
      '    """How many enrolments to return: from 1 to 100."""',
      '    first: Int = 10',
      '  ): [Enrollment!]! @join__field(graph: STUDENTS)',
      '',
    ].join('\n');
    expect(committed).toContain(deployedField);
    const deployed = join(scratch, 'deployed.graphql');
    await writeFile(deployed, committed.replace(deployedField, ''));
    const run = await runCheck('--against', deployed, '--json');
    expect(run.code).toBe(0);
    expect(report(run).changes).toEqual([
      expect.objectContaining({ level: 'safe', path: 'Student.enrollments', type: 'FIELD_ADDED' }),
      expect.objectContaining({ level: 'safe', path: 'Student.enrollments', type: 'FIELD_DESCRIPTION_ADDED' }),
      expect.objectContaining({ level: 'safe', path: 'Student.enrollments.first', type: 'FIELD_ARGUMENT_ADDED' }),
    ]);
  });

  it('--against a URL: diffs against a supergraph served over HTTP', async () => {
    const committed = await readFile(projectPath('schema/supergraph.graphql'), 'utf8');
    const server: Server = createServer((_request, response) => response.end(committed));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as { port: number };
      const run = await runCheck('--against', `http://127.0.0.1:${port}/supergraph.graphql`, '--json');
      expect(run.code).toBe(0);
      expect(report(run)).toMatchObject({ against: `http://127.0.0.1:${port}/supergraph.graphql`, changes: [], passed: true });
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('exits 1 on a removed field an operation uses, naming the field and the operation file', async () => {
    const run = await runCheck(
      '--subgraph',
      await proposeStudents('  "The date of birth; null when the district never recorded it."\n  dateOfBirth: Date\n', ''),
    );
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/BREAKING +Student\.dateOfBirth: Field 'dateOfBirth' was removed from object type 'Student'/);
    expect(run.stdout).toContain(
      'INVALID   operations/student.graphql (operation Student): Cannot query field "dateOfBirth" on type "Student".',
    );
    expect(run.stdout).toMatch(
      /schema check failed: breaking change\(s\) to Student\.dateOfBirth .*operation\(s\) no longer valid: operations\/student\.graphql \(operation Student\)/,
    );
  });

  it('exits 1 on an argument made required (breaking), even when no shipped operation is affected', async () => {
    const subgraph = await proposeStudents(STUDENTS_QUERY, STUDENTS_QUERY.replace('after: String', 'after: String!'));
    const run = await runCheck('--subgraph', subgraph, '--operations', projectPath('operations/student.graphql'), '--json');
    expect(run.code).toBe(1);
    const result = report(run);
    expect(result.invalidOperations).toEqual([]);
    expect(result.changes).toEqual([
      expect.objectContaining({ level: 'breaking', path: 'Query.students.after', type: 'FIELD_ARGUMENT_TYPE_CHANGED' }),
    ]);
    expect(result.passed).toBe(false);
  });

  it('--allow-breaking accepts a breaking change deliberately', async () => {
    const subgraph = await proposeStudents(STUDENTS_QUERY, STUDENTS_QUERY.replace('after: String', 'after: String!'));
    const run = await runCheck('--subgraph', subgraph, '--operations', projectPath('operations/student.graphql'), '--allow-breaking');
    expect(run.stdout).toMatch(/BREAKING +Query\.students\.after/);
    expect(run.stdout).toContain('schema check passed (1 breaking change(s) accepted with --allow-breaking)');
    expect(run.code).toBe(0);
  });

  it('--allow-breaking does not excuse an operation that no longer validates', async () => {
    const subgraph = await proposeStudents(STUDENTS_QUERY, STUDENTS_QUERY.replace('after: String', 'after: String!'));
    const run = await runCheck('--subgraph', subgraph, '--allow-breaking');
    expect(run.code).toBe(1);
    expect(run.stdout).toContain(
      'INVALID   operations/studentsByGrade.graphql (operation Page): Field "students" argument "after" of type "String!" is required',
    );
    expect(run.stdout).not.toContain('--allow-breaking to accept');
  });

  it("exits 1 when the proposed SDL does not compose, with composition's reason", async () => {
    const conflicting = 'type District @key(fields: "id") {\n  id: ID!\n  name: Int!\n}\n';
    const run = await runCheck('--subgraph', await proposeStudents(STUDENT_FIELDS, `${STUDENT_FIELDS}\n\n${conflicting}`));
    expect(run.code).toBe(1);
    expect(run.stdout).toContain('schema check failed: the subgraphs do not compose');
    expect(run.stdout).toContain('District.name');
  });

  it('exits 2 when it cannot check: an unreadable --against, or no operation to validate', async () => {
    const missing = await runCheck('--against', join(scratch, 'missing.graphql'));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('cannot read the deployed supergraph');
    const none = await runCheck('--operations', join(scratch, 'nothing/**/*.graphql'));
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('no operation file matched');
  });
});
