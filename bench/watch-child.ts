/**
 * Watchers for the watch-latency benchmark, in a process of their own so that
 * neither the server nor the updating client shares their event loop.
 *
 * Run: node --import tsx bench/watch-child.ts CONFIG_JSON
 * where CONFIG_JSON is `{ "url", "token", "caPath", "path", "watchers" }` and `path` is
 * a watch request (`…?watch=true&resourceVersion=N`).
 *
 * Opens `watchers` watches on `path`, then prints `{"ready":true}`. Afterwards it answers
 * commands on stdin, one JSON line each on stdout:
 * - `ping` → `{"now": T}`: this process's clock (`performance.timeOrigin + now()`, ms),
 *   so that the parent can estimate the offset between the two clocks;
 * - `count` → `{"events": N}`: MODIFIED/ADDED events received so far, all watchers;
 * - `dump` → `{"arrivals": [[watcher, resourceVersion, T], …]}`, then closes every watch and exits.
 * stdin ending closes the watches and exits too.
 */
import fs from 'node:fs';
import readline from 'node:readline';
import { ApiClient, type WatchEventLine } from './api-client.ts';

interface Config {
  readonly url: string;
  readonly token: string;
  readonly caPath: string;
  readonly path: string;
  readonly watchers: number;
}

const config = JSON.parse(process.argv[2] ?? '{}') as Config;
const client = new ApiClient({ url: config.url, token: config.token, caPem: fs.readFileSync(config.caPath, 'utf8') });
const arrivals: [number, number, number][] = [];
const checked: boolean[] = [];
const toAbs = (t: number): number => performance.timeOrigin + t;

// Decoding 100 copies of every object would make this process the bottleneck on a
// 2-core machine, so only the type and the object's resourceVersion are picked out of
// each line. Lines are `{"type":…,"object":{…,"metadata":{…"resourceVersion":"N"…}…}}`;
// managedFields, annotations and labels never contain a "resourceVersion" key before it.
const TYPE = /^\{"type":"(\w+)"/;
const RV = /"resourceVersion":"(\d+)"/;
const watches = await Promise.all(
  Array.from({ length: config.watchers }, (_, w) =>
    client.watchLines(config.path, (line, receivedAt) => {
      const type = TYPE.exec(line)?.[1];
      if (type !== 'MODIFIED' && type !== 'ADDED') return;
      const rv = Number(RV.exec(line)?.[1]);
      arrivals.push([w, rv, toAbs(receivedAt)]);
      if (!checked[w]) {
        // Once per watcher: the shortcut must agree with a real decode.
        checked[w] = true;
        const decoded = JSON.parse(line) as WatchEventLine;
        if (decoded.type !== type || Number(decoded.object.metadata?.resourceVersion) !== rv) {
          process.stderr.write(`watch-child: event line shortcut disagrees with JSON.parse: ${line.slice(0, 200)}\n`);
          process.exit(3);
        }
      }
    }),
  ),
);
const reply = (o: unknown): void => void process.stdout.write(`${JSON.stringify(o)}\n`);
reply({ ready: true });

const finish = (): void => {
  for (const w of watches) w.close();
  client.close();
  process.exit(0);
};
const lines = readline.createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const cmd = line.trim();
  if (cmd === 'ping') reply({ now: toAbs(performance.now()) });
  else if (cmd === 'count') reply({ events: arrivals.length });
  else if (cmd === 'dump') {
    process.stdout.write(`${JSON.stringify({ arrivals })}\n`, finish);
  }
});
lines.on('close', finish);
