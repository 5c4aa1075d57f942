// glibc's malloc gives memory back to the kernel as soon as a little of it is free at the top of a
// heap, and maps large blocks afresh each time. An image filter frees and reallocates megabytes per
// frame, so every frame faulted its pages in again: about 1,000 extra page faults per 1920x1080 frame
// with sharp, near a tenth of its CPU. These settings keep up to 32 MB free per heap for reuse and
// serve blocks up to 8 MB from the heaps. glibc reads them only when a process starts; other C
// libraries ignore the variable.
const MALLOC_TUNABLES = ['glibc.malloc.mmap_threshold=8388608', 'glibc.malloc.trim_threshold=33554432'];

const tunableName = (tunable: string): string => tunable.split('=')[0]!;

/** The tunables env sets, in order. */
const ownTunables = (env: NodeJS.ProcessEnv): string[] => (env.GLIBC_TUNABLES ?? '').split(':').filter(Boolean);

/** The malloc tunables env does not set yet. */
function missingTunables(env: NodeJS.ProcessEnv): string[] {
  const ownNames = new Set(ownTunables(env).map(tunableName));
  return MALLOC_TUNABLES.filter((tunable) => !ownNames.has(tunableName(tunable)));
}

/**
 * Returns env with the malloc tunables added to GLIBC_TUNABLES; a tunable the environment already sets
 * keeps its value.
 */
export function withMallocTunables(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv & { GLIBC_TUNABLES: string } {
  return { ...env, GLIBC_TUNABLES: [...ownTunables(env), ...missingTunables(env)].join(':') };
}

/** Whether env already sets every malloc tunable (to any value). */
export function hasMallocTunables(env: NodeJS.ProcessEnv): boolean {
  return missingTunables(env).length === 0;
}

/** Whether this process runs on glibc, the only C library that reads the tunables (not musl, not macOS). */
export function runsOnGlibc(): boolean {
  const report = process.report.getReport() as { header?: { glibcVersionRuntime?: string } };
  return report.header?.glibcVersionRuntime !== undefined;
}
