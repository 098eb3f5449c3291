/** One software deployment, in Heat's SoftwareDeployment shape. */
export interface SoftwareDeployment {
  id: string;
  name: string;
  /** `script` or `apply-config`; anything else is reported as failed. */
  group: string;
  /** `script`: the executable body; `apply-config`: a JSON object (or its text). */
  config: unknown;
  inputs: { name: string; value: unknown }[];
  options: Record<string, unknown> | null;
}

/** What the server last sent: one committed config revision for this node. */
export interface ServerConfig {
  revision: number;
  metadata: Record<string, unknown>;
  deployments: SoftwareDeployment[];
}

/**
 * The transport's side of collection: it holds the latest revision received
 * from ospd (or none yet). The engine only reads; the transport writes.
 */
export interface ServerSource {
  latest(): ServerConfig | undefined;
}

export type JsonObject = Record<string, unknown>;
