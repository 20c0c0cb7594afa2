/** The registry built into the berth server: what `cli/server.ts` wires. */
export { createRegistry, isRegistryPath, type BuiltinRegistry, type RegistryDeps, type RegistryOptions } from './routes.ts';
export { defaultRegistryPolicy, type RegistryIdentity, type RegistryPolicy } from './auth.ts';
