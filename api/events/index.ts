export {
  EventHub,
  DEFAULT_EVENT_TIMINGS,
  DEFAULT_STREAM_LIMITS,
  type EventTimings,
  type StreamLimits,
} from './hub.js';
