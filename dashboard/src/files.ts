// The files of a drop: plain files, and every file inside dropped folders (recursively).

function readAll(reader: FileSystemDirectoryReader): Promise<FileSystemEntry[]> {
  return new Promise((resolve, reject) => {
    const entries: FileSystemEntry[] = [];
    // readEntries answers in batches (of 100 in Chromium) until an empty one
    const next = (): void =>
      reader.readEntries((batch) => {
        if (batch.length === 0) return resolve(entries);
        entries.push(...batch);
        next();
      }, reject);
    next();
  });
}

async function filesOf(entry: FileSystemEntry): Promise<File[]> {
  if (entry.isFile) {
    return [await new Promise<File>((resolve, reject) => (entry as FileSystemFileEntry).file(resolve, reject))];
  }
  if (entry.isDirectory) {
    const children = await readAll((entry as FileSystemDirectoryEntry).createReader());
    const nested = await Promise.all(children.map(filesOf));
    return nested.flat();
  }
  return [];
}

export async function droppedFiles(transfer: DataTransfer): Promise<File[]> {
  // entries must be taken before the first await: the DataTransfer is emptied after the event
  const entries = [...transfer.items].map((item) => (item.kind === 'file' ? item.webkitGetAsEntry() : null));
  const plain = [...transfer.files];
  if (entries.length === 0 || entries.some((entry) => entry === null)) return plain;
  const nested = await Promise.all(entries.map((entry) => filesOf(entry!)));
  return nested.flat();
}
