import { describe, expect, it } from 'vitest';
import { parseReference } from '../images/reference.ts';
import { registryEndpoint } from './registry-host.ts';

describe('registryEndpoint', () => {
  it.each([
    { name: 'sends Docker Hub references to registry-1.docker.io over HTTPS', ref: 'busybox', insecure: [], want: 'https://registry-1.docker.io' },
    { name: 'keeps a domain with a port', ref: 'registry.local:5000/a/b:1', insecure: [], want: 'https://registry.local:5000' },
    { name: 'uses plain HTTP for a listed host:port', ref: '127.0.0.1:5000/a:1', insecure: ['127.0.0.1:5000'], want: 'http://127.0.0.1:5000' },
    { name: 'uses plain HTTP for every port of a listed host', ref: '127.0.0.1:5001/a:1', insecure: ['127.0.0.1'], want: 'http://127.0.0.1:5001' },
    { name: 'keeps HTTPS for another port of a listed host:port', ref: '127.0.0.1:5001/a:1', insecure: ['127.0.0.1:5000'], want: 'https://127.0.0.1:5001' },
    { name: 'matches Docker Hub listed under its API host', ref: 'docker.io/library/busybox', insecure: ['registry-1.docker.io'], want: 'http://registry-1.docker.io' },
    { name: 'handles IPv6 hosts', ref: '[::1]:5000/a:1', insecure: ['[::1]'], want: 'http://[::1]:5000' },
  ])('$name', ({ ref, insecure, want }) => {
    expect(registryEndpoint(parseReference(ref).domain, { insecureRegistries: insecure }).baseUrl).toBe(want);
  });
});
