// winston logger factory. JSON in a cluster, text for people. A redaction format runs before any output, so a
// secret that slips into a log call (CVE-2020-8566 leaked RBD admin keys into provisioner logs) never leaves the
// process.
import type { Writable } from 'node:stream';
import winston from 'winston';
import { CEPHX_KEY_TEXT } from './ceph/names.js';
import type { LogFormat, LogLevel } from './config.js';

export type Logger = winston.Logger;

export interface LoggerOptions {
  level: LogLevel;
  format: LogFormat;
  /** Defaults to stdout. */
  stream?: Writable;
  /** Fields on every line, e.g. { component: 'rbd-provisioner' }. */
  defaultMeta?: Record<string, unknown>;
}

export const REDACTED = '[redacted]';

/** Field names whose values are never logged, whatever their nesting: key, adminKey, secret, password, token... */
const SECRET_FIELD = /(key|keyring|secret|password|passwd|token)$/i;
/** A cephx secret, as the Ceph layer defines one (the only shape it accepts as a key). */
const CEPHX_KEY = new RegExp(CEPHX_KEY_TEXT, 'g');

export function isSecretField(name: string): boolean {
  return SECRET_FIELD.test(name);
}

export function redactText(text: string): string {
  return text.replace(CEPHX_KEY, REDACTED);
}

/** Returns a redacted copy: the caller's objects (often cached Kubernetes objects) are never mutated. */
export function redactValue(value: unknown, depth = 0, seen: WeakSet<object> = new WeakSet()): unknown {
  if (typeof value === 'string') return redactText(value);
  if (value === null || typeof value !== 'object') return value;
  if (depth > 8 || seen.has(value)) return '[elided]';
  seen.add(value);
  if (value instanceof Error) return describeError(value);
  if (Array.isArray(value)) return value.map((item) => redactValue(item, depth + 1, seen));
  if (value instanceof Date) return value;
  const copy: Record<string, unknown> = {};
  for (const [name, field] of Object.entries(value)) {
    copy[name] = isSecretField(name) ? REDACTED : redactValue(field, depth + 1, seen);
  }
  return copy;
}

export const redactSecrets = winston.format((info) => {
  for (const name of Object.keys(info)) {
    if (name === 'level') continue;
    info[name] = isSecretField(name) ? REDACTED : redactValue(info[name]);
  }
  return info;
});

/** Plain fields for an error: JSON loses an Error's message, and raw error objects may carry too much. */
export function describeError(error: unknown): { message: string; name?: string; code?: string | number } {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return {
      message: redactText(error.message),
      name: error.name,
      ...(typeof code === 'string' || typeof code === 'number' ? { code } : {}),
    };
  }
  return { message: redactText(String(error)) };
}

function textLine(info: winston.Logform.TransformableInfo): string {
  const { level, message, timestamp, ...fields } = info;
  const rest = Object.entries(fields)
    .map(([name, value]) => `${name}=${typeof value === 'string' && /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value)}`)
    .join(' ');
  return `${String(timestamp)} ${level.toUpperCase().padEnd(5)} ${String(message)}${rest === '' ? '' : ' ' + rest}`;
}

export function createLogger(options: LoggerOptions): Logger {
  const output =
    options.format === 'json' ? winston.format.json() : winston.format.printf((info) => textLine(info));
  const transport =
    options.stream === undefined
      ? new winston.transports.Console()
      : new winston.transports.Stream({ stream: options.stream });
  return winston.createLogger({
    level: options.level,
    defaultMeta: options.defaultMeta,
    format: winston.format.combine(redactSecrets(), winston.format.timestamp(), output),
    transports: [transport],
  });
}

export interface OperationFields {
  op: string;
  pvc?: string;
  pv?: string;
  [field: string]: unknown;
}

/** One child logger per operation, so every line of a provision or delete carries op, pvc and pv. */
export function operationLogger(logger: Logger, fields: OperationFields): Logger {
  return logger.child(fields);
}
