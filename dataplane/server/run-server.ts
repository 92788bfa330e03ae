import type { ServerConfig } from '../config/server-config';

export async function runServer(_config: ServerConfig): Promise<void> { throw new Error('not implemented'); }
