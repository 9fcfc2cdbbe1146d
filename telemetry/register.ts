/**
 * Loaded before a service's own modules (`node --import ./telemetry/register.ts gateway/main.ts`; the npm scripts
 * and `npm start` do so): with OTEL_EXPORTER_OTLP_ENDPOINT set, it hooks the traced libraries before anything
 * imports them (telemetry/tracing.ts). Without it, it does nothing.
 *
 * The project is ESM: require-in-the-middle sees only `require`, so import-in-the-middle's loader hook is
 * registered for the ESM imports, limited to the traced modules so no other module (our TypeScript above all) goes
 * through it.
 */
import { register } from 'node:module';
import { readConfig } from '../config/config.ts';
import { enableInstrumentation } from './tracing.ts';

/** The modules the instrumentations patch, as the loader hook matches them. */
const TRACED_MODULES = ['http', 'node:http', 'pg', 'pg-pool', 'graphql'];

let endpoint: string | undefined;
try {
  endpoint = readConfig().tracing.otlpEndpoint;
} catch {
  // A bad configuration is reported by the entry point itself.
}
if (endpoint) {
  register('@opentelemetry/instrumentation/hook.mjs', import.meta.url, { data: { include: TRACED_MODULES } });
  enableInstrumentation();
}
