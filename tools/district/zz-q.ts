import { withServiceDatabases } from '../operator-cli.ts';
import pg from 'pg';
await withServiceDatabases(async (dbs) => {
  const c = new pg.Client({ connectionString: dbs[0]!.ownerUrl });
  await c.connect();
  await c.query(`update district set status = $2 where slug = $1`, [process.argv[2], process.argv[3]]);
  await c.end();
});
