import { sqlRule } from '../catalog.ts';

export const viewNotSecurityInvoker = sqlRule(
  'view-not-security-invoker',
  "A view runs with its owner's rights unless security_invoker is set, so it reads tenant tables past RLS; a materialized view copies them outside RLS.",
  `select format('%I.%I', n.nspname, c.relname) as object,
          case when c.relkind = 'm' then 'materialized view over tenant tables (its rows are not under RLS)'
               else 'view over tenant tables without security_invoker' end as detail
     from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where c.relkind in ('v', 'm')
      and n.nspname not in ('pg_catalog', 'information_schema')
      and (c.relkind = 'm' or not exists (
             select 1 from pg_options_to_table(c.reloptions) o
              where o.option_name = 'security_invoker' and lower(o.option_value) in ('true', 'on', 'yes', '1')))
      and exists (
        with recursive reads(view_oid, relation_oid) as (
          select r.ev_class, d.refobjid
            from pg_rewrite r join pg_depend d on d.classid = 'pg_rewrite'::regclass and d.objid = r.oid and d.refclassid = 'pg_class'::regclass
           where r.ev_class = c.oid and d.refobjid <> r.ev_class
          union
          select reads.view_oid, d.refobjid
            from reads join pg_rewrite r on r.ev_class = reads.relation_oid
            join pg_depend d on d.classid = 'pg_rewrite'::regclass and d.objid = r.oid and d.refclassid = 'pg_class'::regclass
           where d.refobjid <> r.ev_class)
        select 1 from reads join tenant_tables t on t.oid = reads.relation_oid)
    order by 1`,
);
