import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * test/fixtures/ in this checkout: the one place tests find upstream data, so a
 * clone passes wherever it is placed. Where each file comes from: test/fixtures/SOURCES.md.
 */
export const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');
