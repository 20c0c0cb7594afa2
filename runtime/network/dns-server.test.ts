import { createSocket } from 'node:dgram';
import { describe, expect, it, onTestFinished } from 'vitest';
import { decodeReply, DNS_RCODE, DnsServer, encodeQuery } from './dns-server.ts';

async function ask(port: number, name: string, type = 1): Promise<ReturnType<typeof decodeReply>> {
  const s = createSocket('udp4');
  onTestFinished(() => void s.close());
  const id = Math.floor(Math.random() * 65535);
  const reply = new Promise<Buffer>((resolve) => s.on('message', (m) => resolve(m)));
  s.send(encodeQuery(id, name, type), port, '127.0.0.1');
  const out = decodeReply(await reply);
  expect(out.id).toBe(id);
  return out;
}

async function startServer(opts: Partial<ConstructorParameters<typeof DnsServer>[0]> = {}): Promise<DnsServer> {
  const names: Record<string, string[]> = { web: ['10.208.9.2'], www: ['10.208.9.2', '10.208.9.3'] };
  const server = new DnsServer({ address: '127.0.0.1', port: 0, lookup: (name) => names[name], ...opts });
  await server.start();
  onTestFinished(() => server.close());
  return server;
}

describe('DnsServer', () => {
  const cases = [
    { name: 'answers A queries for a known name', query: 'web', want: { rcode: DNS_RCODE.NOERROR, addresses: ['10.208.9.2'] } },
    { name: 'matches names case-insensitively and with a trailing dot', query: 'WeB.', want: { rcode: DNS_RCODE.NOERROR, addresses: ['10.208.9.2'] } },
    { name: 'answers every address of a name', query: 'www', want: { rcode: DNS_RCODE.NOERROR, addresses: ['10.208.9.2', '10.208.9.3'] } },
    { name: 'gives an empty answer to AAAA of a known name', query: 'web', type: 28, want: { rcode: DNS_RCODE.NOERROR, addresses: [] } },
    { name: 'refuses names it does not know when it has no upstream', query: 'example.com', want: { rcode: DNS_RCODE.REFUSED, addresses: [] } },
  ];
  it.each(cases)('$name', async ({ query, type, want }) => {
    const server = await startServer();
    expect(await ask(server.port, query, type)).toMatchObject(want);
  });

  it('tells the lookup who asks', async () => {
    const seen: string[] = [];
    const server = await startServer({ lookup: (_n, source) => (seen.push(source), ['10.208.9.9']) });
    await ask(server.port, 'x');
    expect(seen).toEqual(['127.0.0.1']);
  });

  it('forwards unknown names to its upstream and relays the answer (upstream on 127.0.0.2:53, root only)', async (t) => {
    const upstream = new DnsServer({ address: '127.0.0.2', port: 53, lookup: (n) => (n === 'example.com' ? ['10.208.9.77'] : undefined) });
    if (!(await upstream.start().then(() => true, () => false))) return t.skip('cannot bind 127.0.0.2:53');
    onTestFinished(() => upstream.close());
    const forwarder = await startServer({ lookup: () => undefined, upstreams: ['127.0.0.2'], forwardTimeoutMs: 500 });
    expect(await ask(forwarder.port, 'example.com')).toMatchObject({ rcode: DNS_RCODE.NOERROR, addresses: ['10.208.9.77'] });
    forwarder.setUpstreams([]);
    expect((await ask(forwarder.port, 'example.com')).rcode).toBe(DNS_RCODE.REFUSED);
  });
});
