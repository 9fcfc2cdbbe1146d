import { sqlRule } from '../catalog.ts';

export const unsafeFunction = sqlRule(
  'unsafe-function',
  "A SECURITY DEFINER function reads tenant tables with its owner's rights, and a mutable search_path lets a caller's objects hijack any function.",
  `select fn.signature as object, a.detail
     from (
       select format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)) as signature, p.prosecdef, pg_get_functiondef(p.oid) as definition,
              exists (select 1 from unnest(coalesce(p.proconfig, '{}')) s where s like 'search_path=%') as fixed_search_path
         from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where p.prokind in ('f', 'p')
          and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_toast%'
          -- Functions of installed extensions are the extension's to fix.
          and not exists (select 1 from pg_depend d where d.classid = 'pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e')
     ) as fn
     cross join lateral (values
       (fn.prosecdef and exists (select 1 from tenant_tables t where position(lower(t.name) in lower(fn.definition)) > 0),
        'SECURITY DEFINER function that reads tenant tables'),
       (not fn.fixed_search_path, 'search_path is not fixed (add SET search_path = pg_catalog, pg_temp)')
     ) as a(flagged, detail)
    where a.flagged
    order by 1, 2`,
);
