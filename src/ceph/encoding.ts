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

/** encode(std::string) then encode(uint64_t): the input of cls_rbd's paged listings (start_after, max_return). */
export function encodeStringAndU64(text: string, value: number): Buffer {
  const number = Buffer.alloc(8);
  number.writeBigUInt64LE(BigInt(value));
  return Buffer.concat([...lengthPrefixed(text), number]);
}

/**
 * decode(std::map<std::string, ceph::bufferlist>) with UTF-8 values, in the encoded (sorted) order: the whole buffer
 * must be the map.
 */
export function decodeStringMap(buffer: Buffer): [string, string][] {
  const entries: [string, string][] = [];
  let offset = 0;
  const take = (what: string): string => {
    if (offset + 4 > buffer.length) throw new RangeError(`encoded map: ${what} at byte ${offset} runs past the end (${buffer.length} bytes)`);
    const length = buffer.readUInt32LE(offset);
    if (offset + 4 + length > buffer.length) throw new RangeError(`encoded map: ${what} at byte ${offset} says ${length} bytes, ${buffer.length - offset - 4} follow`);
    const text = buffer.toString('utf8', offset + 4, offset + 4 + length);
    offset += 4 + length;
    return text;
  };
  if (buffer.length < 4) throw new RangeError(`encoded map: ${buffer.length} bytes, shorter than its count`);
  const count = buffer.readUInt32LE(0);
  offset = 4;
  for (let i = 0; i < count; i++) entries.push([take('a key'), take('a value')]);
  if (offset !== buffer.length) throw new RangeError(`encoded map: ${buffer.length - offset} bytes left after ${count} entries`);
  return entries;
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
