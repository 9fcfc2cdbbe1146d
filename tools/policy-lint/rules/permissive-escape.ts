import { sqlRule } from '../catalog.ts';

// The parsed policy tree (pg_node_tree) is read instead of its deparsed text, so string literals cannot fool it:
// an expression without a column reference ({VAR) is the same for every row; a BoolExpr OR with an IS NULL test is an escape.
export const permissiveEscape = sqlRule(
  'permissive-escape',
  'A permissive policy that is always true, or ORs in an IS NULL escape, lets a caller with no (or any) tenant see every row.',
  `select t.qualified as object, format('permissive policy %I %s %s', p.polname, e.clause,
          case when e.tree !~ '\\{VAR ' then 'does not depend on the row (always true or always false)'
               else 'ORs in an IS NULL escape' end) as detail
     from tenant_tables t
     join pg_policy p on p.polrelid = t.oid and p.polpermissive
     cross join lateral (values ('USING', p.polqual::text), ('WITH CHECK', p.polwithcheck::text)) as e(clause, tree)
    where e.tree is not null
      and (e.tree !~ '\\{VAR ' or (e.tree ~ ':boolop or' and e.tree ~ '\\{NULLTEST .*:nulltesttype 0'))
    order by 1, 2`,
);
