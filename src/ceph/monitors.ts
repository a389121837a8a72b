// Monitor addresses as librados `mon_host` takes them, parsed once for every layer that reads them: the Ceph API
// before it connects, StorageClass parameters, and the PV annotations a delete reads back.

import { isIPv4, isIPv6 } from 'node:net';
import { quote } from './names.js';
import { ValidationError } from './validation.js';

export const MONITORS_ALLOWED =
  'comma-separated monitor addresses, each host, host:port, v1:host:port, v2:host:port, [IPv6]:port ' +
  'or an address vector [v2:host:3300,v1:host:6789]';

/** One monitor as written, plus its msgr1 address when it has one (what the in-tree rbd volume plugin needs). */
export interface MonitorEntry {
  readonly address: string;
  readonly v1Address: string | undefined;
}

/** Splits and validates a monitors list. Throws SyntaxError with a short problem text. */
export function parseMonitors(text: string): MonitorEntry[] {
  const entries = splitOutsideBrackets(text).map((item) => item.trim());
  if (entries.length === 0 || (entries.length === 1 && entries[0] === '')) throw new SyntaxError('empty');
  return entries.map((entry) => {
    if (entry === '') throw new SyntaxError('empty monitor address in the list');
    return parseMonitor(entry);
  });
}

/** The list as librados mon_host gets it (entries trimmed), or a ValidationError naming field. */
export function checkMonitors(value: unknown, field = 'monitors'): string {
  if (typeof value !== 'string') throw new ValidationError(field, MONITORS_ALLOWED, `must be a string, got ${typeof value}`);
  try {
    return parseMonitors(value).map((entry) => entry.address).join(',');
  } catch (error) {
    throw new ValidationError(field, MONITORS_ALLOWED, (error as Error).message);
  }
}

function splitOutsideBrackets(text: string): string[] {
  const items: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '[') depth++;
    else if (c === ']') depth--;
    else if (c === ',' && depth === 0) {
      items.push(text.slice(start, i));
      start = i + 1;
    }
    // Depth 2 is an IPv6 address inside an address vector.
    if (depth < 0 || depth > 2) throw new SyntaxError('unbalanced brackets');
  }
  if (depth !== 0) throw new SyntaxError('unbalanced brackets');
  items.push(text.slice(start));
  return items;
}

const TYPED_ADDRESS = /^(v1|v2):(.*)$/;

function parseMonitor(entry: string): MonitorEntry {
  const bad = (why: string) => new SyntaxError(`${quote(entry)} ${why}`);
  if (entry.startsWith('[') && TYPED_ADDRESS.test(entry.slice(1))) {
    if (!entry.endsWith(']')) throw bad('has text after its address vector');
    let v1Address: string | undefined;
    for (const part of entry.slice(1, -1).split(',').map((p) => p.trim())) {
      const typed = TYPED_ADDRESS.exec(part);
      if (!typed) throw bad('mixes typed and untyped addresses; inside [...] each needs v1: or v2:');
      const why = hostPortProblem(typed[2] ?? '');
      if (why) throw bad(why);
      if (typed[1] === 'v1' && v1Address === undefined) v1Address = typed[2];
    }
    return { address: entry, v1Address };
  }
  const typed = TYPED_ADDRESS.exec(entry);
  const hostPort = typed ? typed[2] ?? '' : entry;
  const why = hostPortProblem(hostPort);
  if (why) throw bad(why);
  return { address: entry, v1Address: typed?.[1] === 'v2' ? undefined : hostPort };
}

const HOST_LABEL = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

function hostPortProblem(text: string): string | undefined {
  let host: string;
  let port: string | undefined;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) return 'has an unclosed [';
    host = text.slice(1, close);
    const rest = text.slice(close + 1);
    if (rest !== '' && !rest.startsWith(':')) return 'has text after its IPv6 address';
    port = rest === '' ? undefined : rest.slice(1);
    if (!isIPv6(host)) return 'is not an IPv6 address in brackets';
  } else {
    const parts = text.split(':');
    if (parts.length > 2) return 'has too many ":" (write IPv6 addresses in brackets: [::1]:6789)';
    host = parts[0] ?? '';
    port = parts[1];
    if (!isHostName(host)) return 'is not a host name or IPv4 address';
  }
  if (port !== undefined && !isPort(port)) return 'has a port outside 1-65535';
  return undefined;
}

function isHostName(host: string): boolean {
  if (/^[\d.]+$/.test(host)) return isIPv4(host);
  return host.length <= 253 && host.split('.').every((label) => HOST_LABEL.test(label));
}

function isPort(text: string): boolean {
  return /^\d{1,5}$/.test(text) && Number(text) >= 1 && Number(text) <= 65535;
}
