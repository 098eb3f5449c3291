import type { Queryable } from './db.js';

export interface MqttUserRecord {
  name: string;
  role: string;
  createdAt: string;
}

/** All SQL about MQTT consumer accounts. Every method takes the connection or transaction to use. */
export const mqttUserStore = {
  async exists(q: Queryable, name: string): Promise<boolean> {
    return !!(await q.get('SELECT 1 FROM mqtt_users WHERE name = ?', [name]));
  },

  async insert(q: Queryable, u: MqttUserRecord, passwordHash: string): Promise<void> {
    await q.run('INSERT INTO mqtt_users (name, role, password_hash, created_at) VALUES (?, ?, ?, ?)', [u.name, u.role, passwordHash, u.createdAt]);
  },

  /** False when there was no such user. */
  async delete(q: Queryable, name: string): Promise<boolean> {
    return (await q.run('DELETE FROM mqtt_users WHERE name = ?', [name])).changes > 0;
  },

  async list(q: Queryable): Promise<MqttUserRecord[]> {
    const rows = await q.all<{ name: string; role: string; created_at: string }>('SELECT name, role, created_at FROM mqtt_users ORDER BY name');
    return rows.map((r) => ({ name: r.name, role: r.role, createdAt: r.created_at }));
  },

  async passwordHash(q: Queryable, name: string): Promise<string | undefined> {
    return (await q.get<{ password_hash: string }>('SELECT password_hash FROM mqtt_users WHERE name = ?', [name]))?.password_hash;
  },
};
