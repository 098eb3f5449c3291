import path from 'node:path';
import { REPO } from './ospd.js';

/** shared/fixtures beside the checkout (as CI lays it out), or $OSP_FIXTURES. */
export const FIXTURES = process.env.OSP_FIXTURES ?? path.resolve(REPO, '..', 'shared', 'fixtures');
