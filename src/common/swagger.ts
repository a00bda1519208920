import { INestApplication } from '@nestjs/common';
import { DocumentBuilder, OpenAPIObject, SchemaObject, SwaggerModule } from '@nestjs/swagger';
import { AppConfig } from '../config/app-config';

/** OpenHIM's token scheme is four headers that must all be present: one requirement, four keys. */
export const TOKEN_AUTH_HEADERS = ['auth-username', 'auth-ts', 'auth-salt', 'auth-token'] as const;
export const BASIC_AUTH_SCHEME = 'basic';
/** OpenHIM 8's session cookie (`koa.sess`, with its signature cookie `koa.sess.sig`). */
export const SESSION_AUTH_SCHEME = 'session';

/** Where the Swagger UI and the OpenAPI document are served. */
export const API_DOCS_PATH = 'api-docs';
export const API_DOCS_JSON_PATH = 'api-docs-json';

/** The start-up log's pointer to the documentation of the API served at `baseUrl`. */
export function apiDocsLine(baseUrl: string): string {
  return `API documentation at ${baseUrl}/${API_DOCS_PATH} (OpenAPI JSON: ${baseUrl}/${API_DOCS_JSON_PATH})`;
}

type LimitSetting = 'MAX_BATCH_SIZE' | 'MAX_TASK_TIDS';

/**
 * Request-body limits that are settings: written into the document when it is built, from the
 * validated config of the running service, so the document states this deployment's limits.
 */
const CONFIGURED_LIMITS: ReadonlyArray<{
  schema: string;
  property: string;
  keyword: 'maximum' | 'maxItems';
  setting: LimitSetting;
}> = [
  { schema: 'CreateTaskDto', property: 'tids', keyword: 'maxItems', setting: 'MAX_TASK_TIDS' },
  { schema: 'CreateTaskDto', property: 'batchSize', keyword: 'maximum', setting: 'MAX_BATCH_SIZE' },
  { schema: 'BulkRerunDto', property: 'batchSize', keyword: 'maximum', setting: 'MAX_BATCH_SIZE' },
];

export function buildOpenApiDocument(app: INestApplication): OpenAPIObject {
  const builder = new DocumentBuilder()
    .setTitle('OpenHIM transaction rerun service')
    .setDescription(
      "OpenHIM's tasks API (create, list, read, pause, resume, cancel and delete rerun tasks), " +
        "served by a service whose reruns run on Bull workers. Authenticate with OpenHIM 8's session cookie " +
        '(POST /authenticate/local, or a login at OpenHIM core sharing OPENHIM_SESSION_KEY), OpenHIM token headers ' +
        '(get the salt from GET /authenticate/{email}) or HTTP Basic. Errors are text/plain, as in OpenHIM. ' +
        'Every authenticated route may answer 401 (no or wrong credentials), 429 with Retry-After (too many failed ' +
        'authentications from the client IP: AUTH_FAILURE_LIMIT per minute) and 503 (MongoDB unavailable).',
    )
    .setVersion('1')
    .addBasicAuth({ type: 'http', scheme: 'basic' }, BASIC_AUTH_SCHEME)
    .addCookieAuth('koa.sess', { type: 'apiKey', in: 'cookie', name: 'koa.sess' }, SESSION_AUTH_SCHEME);
  for (const header of TOKEN_AUTH_HEADERS) {
    builder.addApiKey({ type: 'apiKey', in: 'header', name: header }, header);
  }
  const document = SwaggerModule.createDocument(app, builder.build());
  applyConfiguredLimits(document, app.get(AppConfig, { strict: false }));
  return document;
}

export function setupSwagger(app: INestApplication): void {
  SwaggerModule.setup(API_DOCS_PATH, app, buildOpenApiDocument(app), { jsonDocumentUrl: API_DOCS_JSON_PATH });
}

function applyConfiguredLimits(document: OpenAPIObject, config: AppConfig): void {
  for (const { schema, property, keyword, setting } of CONFIGURED_LIMITS) {
    const target = (document.components?.schemas?.[schema] as SchemaObject | undefined)?.properties?.[property] as
      SchemaObject | undefined;
    // A renamed DTO or property must not silently drop a limit from the document.
    if (!target) throw new Error(`OpenAPI document: no property ${schema}.${property} to carry ${setting}`);
    target[keyword] = config[setting];
  }
}
