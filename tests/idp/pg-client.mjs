#!/usr/bin/env node
// node-postgres as an unmodified client for the tests: connects, prints every notice on stderr
// as it arrives (`NOTICE: …`, so a test can read a sign-in code while the connection waits),
// runs one query and prints its rows as JSON on stdout.
//
//   node tests/idp/pg-client.mjs --port N --user U --database D [--password P]
//        [--options "-c ssoOAuthFlow=deviceGrant"] --query SQL [--params JSON-ARRAY]
//
// With --params the query runs in the extended protocol (Parse/Bind/Execute), else simple.
//
// Exit status 1 with the server's message on stderr when the connection or query fails.

import { parseArgs } from 'node:util';
import pg from 'pg';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    user: { type: 'string' },
    database: { type: 'string' },
    password: { type: 'string' },
    options: { type: 'string' },
    query: { type: 'string' },
    params: { type: 'string' },
  },
  strict: true,
});

const client = new pg.Client({
  host: '127.0.0.1',
  port: Number(args.port),
  user: args.user,
  database: args.database,
  password: args.password,
  options: args.options,
  ssl: false,
  connectionTimeoutMillis: 120000,
});
client.on('notice', (n) => process.stderr.write(`NOTICE: ${n.message}\n`));
try {
  await client.connect();
  const result = args.params === undefined
    ? await client.query(args.query)
    : await client.query(args.query, JSON.parse(args.params));
  process.stdout.write(`${JSON.stringify(result.rows)}\n`);
  await client.end();
} catch (err) {
  process.stderr.write(`ERROR: ${err.severity ?? ''} ${err.code ?? ''} ${err.message}\n`);
  process.exit(1);
}
