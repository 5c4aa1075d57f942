export { systemMetrics, type SystemMetrics } from './collectors.js';
export { httpMetrics, routeOf } from './http.js';
