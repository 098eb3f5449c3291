// The config store moved to server/store/configs.ts (all SQL lives under server/store/).
// Kept only so server/api/agent-service.ts and config-service.ts build until their imports point there.
export { configStore, type AckRow, type ConfigSummary, type DeploymentDoc, type RevisionRow } from '../store/configs.js';
