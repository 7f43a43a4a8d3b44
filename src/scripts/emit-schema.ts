import 'reflect-metadata';
import { writeFileSync } from 'node:fs';
import { buildAppSchema } from '../graphql/schema.js';
import { printAppSchema } from '../graphql/print-schema.js';

/** `npm run schema`: writes schema.graphql from the code. */
const schema = await buildAppSchema();
writeFileSync(process.argv[2] ?? 'schema.graphql', printAppSchema(schema));
console.log('schema.graphql written');
