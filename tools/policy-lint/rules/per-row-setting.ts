import { queryCatalog, type PolicyRule } from '../catalog.ts';

const TENANT_CALL = /\b(current_setting|current_tenant_id)\s*\(/i;

/** The policy text with every parenthesised sub-select (`( SELECT … )`) and string literal removed. */
export function outsideSubselects(expression: string): string {
  let result = '';
  for (let i = 0; i < expression.length; i++) {
    const char = expression[i]!;
    if (char === "'") {
      // Skip a literal ('' is an escaped quote inside it).
      for (i++; i < expression.length; i++) if (expression[i] === "'" && expression[++i] !== "'") break;
      i--;
      continue;
    }
    if (char === '(' && /^\(\s*select\b/i.test(expression.slice(i))) {
      let depth = 0;
      for (; i < expression.length; i++) {
        if (expression[i] === '(') depth++;
        else if (expression[i] === ')' && --depth === 0) break;
      }
      continue;
    }
    result += char;
  }
  return result;
}

export const perRowSetting: PolicyRule = {
  name: 'per-row-setting',
  rationale:
    'A bare current_setting()/current_tenant_id() call is evaluated per row and defeats index use; (select …) runs it once per statement.',
  async check(target) {
    const expressions = await queryCatalog<{ object: string; policy: string; expression: string }>(
      target,
      `select t.qualified as object, format('policy %I %s', p.polname, e.clause) as policy, e.text as expression
         from tenant_tables t join pg_policy p on p.polrelid = t.oid
         cross join lateral (values ('USING', pg_get_expr(p.polqual, p.polrelid)), ('WITH CHECK', pg_get_expr(p.polwithcheck, p.polrelid))) as e(clause, text)
        where e.text is not null
        order by 1, 2`,
    );
    return expressions
      .filter(({ expression }) => TENANT_CALL.test(outsideSubselects(expression)))
      .map(({ object, policy }) => ({ object, detail: `${policy} calls the tenant setting per row instead of through (select …)` }));
  },
};
