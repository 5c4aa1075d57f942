export { systemMetrics, type SystemMetrics } from './collectors.js';
export { HttpMetrics, routeOf } from './http.js';
