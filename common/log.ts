import { pino, type Logger } from 'pino';
import { prettyDestination } from './log-pretty.js';

export type { Logger };
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
export const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
/** `auto`: pretty when standard output is a terminal, JSON lines otherwise. */
export type LogFormat = 'auto' | 'json' | 'pretty';
export const LOG_FORMATS: readonly LogFormat[] = ['auto', 'json', 'pretty'];

/** What `auto` means for this process's standard output. */
export function resolveLogFormat(format: LogFormat, stdoutIsTerminal: boolean): 'json' | 'pretty' {
  return format === 'auto' ? (stdoutIsTerminal ? 'pretty' : 'json') : format;
}

export function createLogger(component: string, level: LogLevel, format: 'json' | 'pretty' = 'json'): Logger {
  const options = { name: component, level, base: undefined };
  return format === 'pretty'
    ? pino(options, prettyDestination(process.stdout, process.stdout.isTTY === true))
    : pino(options);
}
