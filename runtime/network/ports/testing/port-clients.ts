/** Small clients for port-publishing tests and the `ports` benchmark. */
import dgram from 'node:dgram';
import net from 'node:net';

/** Connects, reads until the server closes, resolves with what it sent; `timeoutMs` rejects. */
export function tcpRead(host: string, port: number, send = '', timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port });
    let out = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no answer from ${host}:${port}/TCP within ${timeoutMs} ms`));
    }, timeoutMs);
    s.on('connect', () => send && s.write(send));
    s.on('data', (b: Buffer) => (out += b.toString()));
    s.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    s.on('end', () => {
      clearTimeout(timer);
      s.destroy();
      resolve(out);
    });
  });
}

/** Sends one datagram and resolves with the first answer; `timeoutMs` rejects. */
export function udpAsk(host: string, port: number, message: string, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    const timer = setTimeout(() => {
      s.close();
      reject(new Error(`no answer from ${host}:${port}/UDP within ${timeoutMs} ms`));
    }, timeoutMs);
    s.on('message', (m) => {
      clearTimeout(timer);
      s.close();
      resolve(m.toString());
    });
    s.on('error', (err) => {
      clearTimeout(timer);
      s.close();
      reject(err);
    });
    s.send(message, port, host);
  });
}

/** Asks the netns `source` server for `bytes` bytes and resolves with how many arrived. */
export function tcpDownload(host: string, port: number, bytes: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port });
    let got = 0;
    s.on('connect', () => s.write(`${bytes}\n`));
    s.on('data', (b: Buffer) => (got += b.length));
    s.on('error', reject);
    s.on('end', () => {
      s.destroy();
      resolve(got);
    });
  });
}
