// glibc's malloc gives memory back to the kernel as soon as a little of it is free at the top of a
// heap, and maps large blocks afresh each time. An image filter frees and reallocates megabytes per
// frame, so every frame faulted its pages in again: about 1,000 extra page faults per 1920x1080 frame
// with sharp, near a tenth of its CPU. These settings keep up to 32 MB free per heap for reuse and
// serve blocks up to 8 MB from the heaps. glibc reads them only when a process starts; other C
// libraries ignore the variable.
const MALLOC_TUNABLES = ['glibc.malloc.mmap_threshold=8388608', 'glibc.malloc.trim_threshold=33554432'];

const tunableName = (tunable: string): string => tunable.split('=')[0]!;

/** Returns env with the malloc tunables added to GLIBC_TUNABLES; a tunable the environment already sets keeps its value. */
export function withMallocTunables(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const own = (env.GLIBC_TUNABLES ?? '').split(':').filter(Boolean);
  const ownNames = new Set(own.map(tunableName));
  return { ...env, GLIBC_TUNABLES: [...own, ...MALLOC_TUNABLES.filter((tunable) => !ownNames.has(tunableName(tunable)))].join(':') };
}

/** Whether env already sets every malloc tunable (to any value). */
export function hasMallocTunables(env: NodeJS.ProcessEnv): boolean {
  const ownNames = new Set((env.GLIBC_TUNABLES ?? '').split(':').map(tunableName));
  return MALLOC_TUNABLES.every((tunable) => ownNames.has(tunableName(tunable)));
}
