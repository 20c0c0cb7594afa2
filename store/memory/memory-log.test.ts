import { revisionLogConformance } from '../testing/conformance.ts';
import { MemoryLog } from './memory-log.ts';

revisionLogConformance('MemoryLog', async () => ({ log: new MemoryLog(), cleanup: async () => {} }));
