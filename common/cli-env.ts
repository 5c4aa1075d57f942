/**
 * Flags can also come from DPIP_* environment variables (yargs' .env). The server and the worker
 * share that prefix but not their flags, so each drops the variables of the other before parsing,
 * instead of failing on them as unknown arguments.
 */
export function dropForeignEnv(env: NodeJS.ProcessEnv, prefix: string, flags: readonly string[]): string[] {
  const own = new Set(flags.map((flag) => `${prefix}_${flag.replace(/-/g, '_').toUpperCase()}`));
  const dropped: string[] = [];
  for (const key of Object.keys(env)) {
    if (key.startsWith(`${prefix}_`) && !own.has(key)) {
      delete env[key];
      dropped.push(key);
    }
  }
  return dropped;
}
