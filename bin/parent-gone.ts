/**
 * Calls `gone` once when the process that started this one with an IPC channel is gone, even when it was
 * killed outright, and even when it went before this call: a channel that closes while this process is
 * still loading its modules emits its 'disconnect' to no one, and only `process.connected` tells.
 */
export function whenParentGone(gone: () => void): void {
  if (!process.send) return;
  if (!process.connected) {
    gone();
    return;
  }
  process.once('disconnect', gone);
}
