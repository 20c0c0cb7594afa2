/** `berth` as `bin/berth.js` runs it, as a file the benchmarks bundle (`containers-server.ts`). */
import { main } from '../cli/main.ts';

await main(process.argv).catch((err: unknown) => {
  process.stderr.write(`berth: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
