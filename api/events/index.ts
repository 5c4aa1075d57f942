export { EventHub, DEFAULT_EVENT_TIMINGS, type EventTimings } from './hub.js';
