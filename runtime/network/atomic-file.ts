import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { writeFileAtomic as writeAtomic } from '../atomic-file.ts';

export { readJsonFile } from '../atomic-file.ts';

/** Writes a network state file atomically (`runtime/atomic-file.ts`), private (0600), creating its directory (0700). */
export async function writeFileAtomic(path: string, data: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writeAtomic(path, data, 0o600);
}
