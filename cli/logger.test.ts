import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from './logger.ts';

/** A stream that keeps each JSON line pino writes, parsed. */
function capture(): { stream: Writable; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString('utf8').split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return { stream, lines };
}

describe('createLogger', () => {
  it('writes one JSON line with level, ISO time, name and msg', () => {
    const { stream, lines } = capture();
    createLogger({ level: 'info', name: 'apiserver', destination: stream }).info({ port: 7443 }, 'listening');

    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 30, name: 'apiserver', msg: 'listening', port: 7443 });
    expect(new Date(lines[0]!.time as string).toISOString()).toBe(lines[0]!.time);
  });

  it.each([
    { name: 'info drops debug', level: 'info', want: ['info', 'warn'] },
    { name: 'debug keeps debug', level: 'debug', want: ['debug', 'info', 'warn'] },
    { name: 'warn drops info', level: 'warn', want: ['warn'] },
    { name: 'silent drops everything', level: 'silent', want: [] },
  ])('honours the level: $name', ({ level, want }) => {
    const { stream, lines } = capture();
    const log = createLogger({ level, destination: stream });
    log.debug('debug');
    log.info('info');
    log.warn('warn');
    expect(lines.map((l) => l.msg)).toEqual(want);
  });

  it('redacts credentials in request headers and token fields', () => {
    const { stream, lines } = capture();
    createLogger({ level: 'info', destination: stream }).info(
      {
        req: { headers: { authorization: 'Bearer s3cret', cookie: 'c=s3cret', 'user-agent': 'kubectl' } },
        headers: { authorization: 'Bearer s3cret' },
        token: 's3cret',
      },
      'x',
    );
    const text = JSON.stringify(lines[0]);
    expect(text).not.toContain('s3cret');
    expect(lines[0]).toMatchObject({
      req: { headers: { authorization: '[Redacted]', cookie: '[Redacted]', 'user-agent': 'kubectl' } },
      headers: { authorization: '[Redacted]' },
      token: '[Redacted]',
    });
  });

  it.each(['verbose', 'INFO', ''])('rejects the unknown level %j, naming the valid ones', (level) => {
    expect(() => createLogger({ level })).toThrow(/want one of trace, debug, info, warn, error, fatal, silent/);
  });
});
