// The few pieces of Ceph's wire encoding that object class calls need (src/include/encoding.h): little-endian u32
// lengths in front of strings and buffers, a u32 count in front of a map's entries.

/** encode(std::map<std::string, ceph::bufferlist>) with UTF-8 values. */
export function encodeStringMap(entries: Record<string, string>): Buffer {
  const parts: Buffer[] = [u32(Object.keys(entries).length)];
  for (const [key, value] of Object.entries(entries)) parts.push(...lengthPrefixed(key), ...lengthPrefixed(value));
  return Buffer.concat(parts);
}

/** decode(std::string): the whole buffer must be one encoded string. */
export function decodeString(buffer: Buffer): string {
  if (buffer.length < 4) throw new RangeError(`encoded string: ${buffer.length} bytes, shorter than its length field`);
  const length = buffer.readUInt32LE(0);
  if (buffer.length !== 4 + length) throw new RangeError(`encoded string: length field says ${length} bytes, ${buffer.length - 4} follow`);
  return buffer.toString('utf8', 4);
}

function lengthPrefixed(text: string): [Buffer, Buffer] {
  const bytes = Buffer.from(text, 'utf8');
  return [u32(bytes.length), bytes];
}

function u32(value: number): Buffer {
  const buffer = Buffer.alloc(4);
  buffer.writeUInt32LE(value);
  return buffer;
}
