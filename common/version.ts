/**
 * The osp release every program reports (`ospd --version`, `ospctl --version`).
 * A constant rather than a read of package.json, because the agent ships as a
 * single executable with no package.json beside it; test/unit/version.test.ts
 * keeps the two equal.
 */
export const OSP_VERSION = '0.1.0';
