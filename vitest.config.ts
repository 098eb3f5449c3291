import { defineConfig } from 'vitest/config';

// Tests that start real peers (ipmi_sim, dnsmasq, QEMU) are slow by nature;
// the per-test timeouts below are upper bounds, not performance claims.
export default defineConfig({
  test: {
    include: ['**/*.test.ts'],
    // .tmp holds image build roots (a whole Debian tree, with /proc and /sys mounted while building): never crawled.
    exclude: ['node_modules/**', 'dist/**', '.tmp/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    reporters: ['default'],
  },
});
