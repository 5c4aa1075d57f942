import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from '../common/log.js';

/** The log flags every program takes (yargs options). */
export const LOG_OPTIONS = {
  'log-level': { choices: LOG_LEVELS, default: 'info' as LogLevel },
  'log-format': {
    choices: LOG_FORMATS,
    default: 'auto' as LogFormat,
    describe: 'log lines: json, pretty, or auto (pretty in a terminal)',
  },
} as const;
