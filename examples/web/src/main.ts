/**
 * A frontend of the graph in plain TypeScript: Apollo Client without a UI framework, typed by the documents
 * GraphQL Code Generator wrote from the API schema and operations/ (src/generated/, `npm run example:codegen`).
 *
 * The token comes from `?token=` (then removed from the address bar, so it stays out of the history) or the
 * form; the gateway from `?gateway=`, the form, or the build's VITE_GATEWAY_URL (default http://localhost:4000/graphql).
 */
import { ApolloClient, CombinedGraphQLErrors, HttpLink, InMemoryCache } from '@apollo/client';
import { WebDistrictDocument, WebStudentsDocument, type WebStudentsQuery } from './generated/graphql.ts';

const PAGE_SIZE = 10;
const DEFAULT_GATEWAY = import.meta.env.VITE_GATEWAY_URL ?? 'http://localhost:4000/graphql';

const element = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const form = element<HTMLFormElement>('connect');
const gatewayInput = element<HTMLInputElement>('gateway');
const tokenInput = element<HTMLInputElement>('token');
const errorText = element<HTMLParagraphElement>('error');
const districtSection = element<HTMLElement>('district');
const nextPageButton = element<HTMLButtonElement>('next-page');

/** A list of rows or items as DOM nodes: text only (textContent), so no name from the graph is ever parsed as HTML. */
function replaceChildren(parent: HTMLElement, rows: string[][], tag: 'li' | 'tr') {
  parent.replaceChildren(
    ...rows.map((cells) => {
      const row = document.createElement(tag);
      if (tag === 'li') row.textContent = cells.join(' ');
      else row.append(...cells.map((text) => Object.assign(document.createElement('td'), { textContent: text })));
      return row;
    }),
  );
}

function showError(error: unknown) {
  const message = CombinedGraphQLErrors.is(error)
    ? error.errors.map((e) => `${typeof e.extensions?.code === 'string' ? e.extensions.code : 'ERROR'}: ${e.message}`).join('; ')
    : error instanceof Error
      ? error.message
      : String(error);
  errorText.textContent = message;
  errorText.hidden = false;
}

let client: ApolloClient | undefined;
let page: { number: number; endCursor: string | null } = { number: 0, endCursor: null };

function showStudents(students: WebStudentsQuery['students']) {
  replaceChildren(
    element('students'),
    students.edges.map(({ node }) => [node.lastName, node.firstName, String(node.grade), node.dateOfBirth ?? '', node.school?.name ?? '']),
    'tr',
  );
  element('page-number').textContent = `(page ${page.number})`;
  nextPageButton.disabled = !students.pageInfo.hasNextPage;
}

async function loadStudents(after: string | null) {
  const { data } = await client!.query({ query: WebStudentsDocument, variables: { first: PAGE_SIZE, after } });
  if (!data) throw new Error('no students in the response');
  page = { number: page.number + 1, endCursor: data.students.pageInfo.endCursor };
  showStudents(data.students);
}

async function load() {
  errorText.hidden = true;
  const token = tokenInput.value.trim();
  client = new ApolloClient({
    link: new HttpLink({ uri: gatewayInput.value, headers: { authorization: `Bearer ${token}` } }),
    cache: new InMemoryCache(),
  });
  const { data } = await client.query({ query: WebDistrictDocument });
  if (!data) throw new Error('no district in the response');
  element('district-name').textContent = data.district.name;
  element('district-slug').textContent = data.district.slug;
  replaceChildren(
    element('schools'),
    data.schools.map((school) => [school.name]),
    'li',
  );
  page = { number: 0, endCursor: null };
  await loadStudents(null);
  districtSection.hidden = false;
}

/** Runs a step of the page; its failure is shown, never left unhandled. */
const run = (task: () => Promise<void>): void => void task().catch(showError);

form.addEventListener('submit', (event) => {
  event.preventDefault();
  run(load);
});
nextPageButton.addEventListener('click', () => {
  nextPageButton.disabled = true;
  run(() => loadStudents(page.endCursor));
});

const params = new URLSearchParams(location.search);
gatewayInput.value = params.get('gateway') ?? DEFAULT_GATEWAY;
const urlToken = params.get('token');
if (urlToken) {
  tokenInput.value = urlToken;
  params.delete('token');
  history.replaceState(null, '', `${location.pathname}${params.size ? `?${params.toString()}` : ''}`);
  run(load);
}
