// @hey-api/openapi-ts configuration: generate a fetch-based client, its types and one function
// per operation from the committed document. `strict` validation turns the generator's own
// checks of the document (duplicate operation ids, malformed servers, ...) into hard errors.
import { defineConfig } from '@hey-api/openapi-ts';

export default defineConfig({
  input: process.env.STATION_OPENAPI ?? '../../openapi/openapi.json',
  output: 'generated',
  plugins: ['@hey-api/client-fetch', '@hey-api/typescript', '@hey-api/sdk'],
  parser: { validate_EXPERIMENTAL: 'strict' },
  logs: { file: false, level: 'info' },
});
