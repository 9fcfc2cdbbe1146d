/** Every subgraph of the platform, in the order they are migrated and started. */
import { districts } from './districts/index.ts';
import { students } from './students/index.ts';
import { staff } from './staff/index.ts';

export const subgraphs = [districts, students, staff];
export { districts, students, staff };
