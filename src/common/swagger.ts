import { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';

/** OpenHIM's token scheme is four headers that must all be present: one requirement, four keys. */
export const TOKEN_AUTH_HEADERS = ['auth-username', 'auth-ts', 'auth-salt', 'auth-token'] as const;
export const BASIC_AUTH_SCHEME = 'basic';
/** OpenHIM 8's session cookie (`koa.sess`, with its signature cookie `koa.sess.sig`). */
export const SESSION_AUTH_SCHEME = 'session';

export function setupSwagger(app: INestApplication): void {
  const builder = new DocumentBuilder()
    .setTitle('OpenHIM transaction rerun service')
    .setDescription(
      "OpenHIM's tasks API (create, list, read, pause, resume, cancel and delete rerun tasks), " +
        "served by a service whose reruns run on Bull workers. Authenticate with OpenHIM 8's session cookie " +
        '(POST /authenticate/local, or a login at OpenHIM core sharing OPENHIM_SESSION_KEY), OpenHIM token headers ' +
        '(get the salt from GET /authenticate/{email}) or HTTP Basic.',
    )
    .setVersion('1')
    .addBasicAuth({ type: 'http', scheme: 'basic' }, BASIC_AUTH_SCHEME)
    .addCookieAuth('koa.sess', { type: 'apiKey', in: 'cookie', name: 'koa.sess' }, SESSION_AUTH_SCHEME);
  for (const header of TOKEN_AUTH_HEADERS) {
    builder.addApiKey({ type: 'apiKey', in: 'header', name: header }, header);
  }
  const document = SwaggerModule.createDocument(app, builder.build());
  SwaggerModule.setup('api-docs', app, document, { jsonDocumentUrl: 'api-docs-json' });
}
