/** berth's version, from package.json (its own module: the CLI needs it before anything else). */
import { readFileSync } from 'node:fs';

/** berth's version, from package.json. */
export const BERTH_VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
