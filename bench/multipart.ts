import { randomBytes } from 'node:crypto';

export interface MultipartFile {
  field: string;
  filename: string;
  type: string;
  data: Buffer;
}

/** A multipart/form-data body as buffers to write in order: no copy of the file's bytes. */
export interface MultipartBody {
  contentType: string;
  parts: Buffer[];
  length: number;
}

/** Text fields, then one file. Names and values are ours (ids, fixed words): no quoting is needed. */
export function multipartBody(fields: Record<string, string>, file: MultipartFile): MultipartBody {
  const boundary = `dpip-${randomBytes(12).toString('hex')}`;
  const head = Buffer.from(
    Object.entries(fields)
      .map(([name, value]) => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`)
      .join('') +
      `--${boundary}\r\nContent-Disposition: form-data; name="${file.field}"; filename="${file.filename}"\r\n` +
      `Content-Type: ${file.type}\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  return {
    contentType: `multipart/form-data; boundary=${boundary}`,
    parts: [head, file.data, tail],
    length: head.length + file.data.length + tail.length,
  };
}
