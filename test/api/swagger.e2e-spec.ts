import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { apiDocsLine } from '../../src/common/swagger';
import { TestEnvironment } from '../support/test-environment';

type Operation = {
  security?: Array<Record<string, string[]>>;
  parameters?: Array<{ name: string; in: string }>;
  requestBody?: {
    content: Record<string, { schema?: { $ref?: string }; examples?: Record<string, { value: unknown }> }>;
  };
  responses: Record<string, { content?: Record<string, { schema?: { example?: unknown } }> }>;
};
type OpenApi = {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: {
    securitySchemes: Record<string, unknown>;
    schemas: Record<string, { properties?: Record<string, Record<string, unknown> & { example?: unknown }> }>;
  };
};

const TOKEN_REQUIREMENT = { 'auth-username': [], 'auth-ts': [], 'auth-salt': [], 'auth-token': [] };
const SEED_SAMPLE = {
  tids: ['5bb777777bbb66cc5d4444ee', '5ceec0bb3ca344f9a30df633', '5af732d1cbf94ba88b8f0bc0'],
  batchSize: 2,
  paused: true,
};

/** Routes Express knows about, as `method path` in OpenAPI notation (`/tasks/{id}`). */
function expressRoutes(app: INestApplication): string[] {
  const router = (
    app.getHttpAdapter().getInstance() as {
      router: { stack: Array<{ route?: { path: string; methods: Record<string, boolean> } }> };
    }
  ).router;
  return router.stack.flatMap((layer) => {
    const route = layer.route;
    if (!route || typeof route.path !== 'string') return [];
    const methods = Object.keys(route.methods).filter((method) => route.methods[method]);
    // Mounted apps (Bull Board) and catch-alls register every method; Swagger's own pages are not API.
    if (methods.length > 5 || route.path.startsWith('/api-docs') || route.path.includes('*')) return [];
    return methods.map((method) => `${method} ${route.path.replace(/:(\w+)/g, '{$1}')}`);
  });
}

describe('OpenAPI document (/api-docs-json) and UI (/api-docs)', () => {
  let env: TestEnvironment;
  let app: INestApplication;
  let baseUrl: string;
  let doc: OpenApi;

  beforeAll(async () => {
    env = await TestEnvironment.start();
    // Not the defaults: the document must state this deployment's limits.
    ({ app, baseUrl } = await env.startApi({ MAX_BATCH_SIZE: '50', MAX_TASK_TIDS: '500' }));
    doc = (await request(baseUrl).get('/api-docs-json').expect(200)).body as OpenApi;
  });
  afterAll(() => env?.stop());

  const operation = (method: string, path: string) => doc.paths[path]?.[method];

  it('documents every route the API serves', () => {
    expect(doc.openapi).toMatch(/^3\./);
    const routes = expressRoutes(app);
    expect(routes).toEqual(
      expect.arrayContaining([
        'post /tasks',
        'get /tasks',
        'get /tasks/{id}',
        'put /tasks/{id}',
        'delete /tasks/{id}',
        'post /bulkrerun',
      ]),
    );
    const undocumented = routes.filter((route) => {
      const [method, path] = route.split(' ');
      return !operation(method, path);
    });
    expect(undocumented).toEqual([]);
  });

  it("declares the three authentication schemes on every tasks route: the four token headers together, Basic, or OpenHIM 8's session cookie", () => {
    expect(Object.keys(doc.components.securitySchemes).sort()).toEqual(
      ['auth-salt', 'auth-token', 'auth-ts', 'auth-username', 'basic', 'session'].sort(),
    );
    expect(doc.components.securitySchemes.session).toEqual({ type: 'apiKey', in: 'cookie', name: 'koa.sess' });
    const routes: Array<[string, string]> = [
      ['post', '/tasks'],
      ['get', '/tasks'],
      ['get', '/tasks/{id}'],
      ['put', '/tasks/{id}'],
      ['delete', '/tasks/{id}'],
      ['post', '/bulkrerun'],
    ];
    for (const [method, path] of routes) {
      const op = operation(method, path)!;
      expect(op.security).toEqual(expect.arrayContaining([TOKEN_REQUIREMENT, { basic: [] }, { session: [] }]));
      // 429: too many failed authentications from the client IP; 503: MongoDB unavailable.
      expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(['400', '401', '429', '503']));
    }
  });

  it("states the body limits of this service's settings, and that ratePerSecond must be above 0", () => {
    const property = (schema: string, name: string) => doc.components.schemas[schema].properties![name];
    expect(property('CreateTaskDto', 'tids')).toMatchObject({ minItems: 1, maxItems: 500 });
    expect(property('CreateTaskDto', 'batchSize')).toMatchObject({ type: 'integer', minimum: 1, maximum: 50 });
    expect(property('BulkRerunDto', 'batchSize')).toMatchObject({ type: 'integer', minimum: 1, maximum: 50 });
    for (const schema of ['CreateTaskDto', 'BulkRerunDto']) {
      expect(property(schema, 'ratePerSecond')).toMatchObject({ type: 'number', minimum: 0, exclusiveMinimum: true });
    }
  });

  it('declares the answers issue 17 found missing (see swagger-status-codes.e2e-spec.ts for all of them)', () => {
    const statuses = (method: string, path: string) => Object.keys(operation(method, path)!.responses).sort();
    expect(statuses('put', '/tasks/{id}')).toContain('409');
    expect(operation('put', '/tasks/{id}')!.responses['409'].content!['text/plain'].schema!.example).toMatch(
      /keeps changing; try again$/,
    );
    expect(statuses('get', '/health/ready')).toEqual(['200', '503']);
    expect(statuses('get', '/health')).toEqual(['200', '503']);
    expect(statuses('get', '/authenticate/{email}')).toEqual(['200', '404', '429', '503']);
    expect(statuses('get', '/logout')).toEqual(['200', '401', '429', '503']);
    // A route's own 503 (the queue) keeps its example; the guard's causes are added to its description.
    const create503 = operation('post', '/tasks')!.responses['503'] as {
      description: string;
      content: Record<string, { schema: { example: string } }>;
    };
    expect(create503.content['text/plain'].schema.example).toMatch(/^The rerun queue \(Redis\) is unavailable/);
    expect(create503.description).toMatch(/queue \(Redis\)[\s\S]*MongoDB is unavailable/);
  });

  it("documents the create body with the seed's sample, and the text/plain answers", () => {
    const create = operation('post', '/tasks')!;
    const body = create.requestBody!.content['application/json'];
    expect(body.examples!.sample.value).toEqual(SEED_SAMPLE);
    const schema = doc.components.schemas[body.schema!.$ref!.split('/').pop()!];
    expect(schema.properties!.tids.example).toEqual(SEED_SAMPLE.tids);
    expect(schema.properties!.batchSize.example).toBe(2);
    expect(schema.properties!.paused.example).toBe(true);

    const text = (method: string, path: string, status: string) =>
      operation(method, path)!.responses[status].content!['text/plain'].schema!.example;
    expect(text('post', '/tasks', '201')).toMatch(/^User \S+ created task with id [0-9a-f]{24}$/);
    expect(text('post', '/tasks', '403')).toBe('Insufficient permissions prevents this rerun task from being created');
    expect(text('put', '/tasks/{id}', '200')).toBe('The Task was successfully updated');
    expect(text('delete', '/tasks/{id}', '200')).toBe('The Task was successfully deleted');
    expect(text('get', '/tasks/{id}', '404')).toMatch(/^We could not find a Task with this ID: /);
    expect(text('put', '/tasks/{id}', '403')).toMatch(/is not an admin, API access to updateTask denied\.$/);
  });

  it('documents the query parameters of the reads and the bulk rerun body', () => {
    for (const path of ['/tasks', '/tasks/{id}']) {
      const names = operation('get', path)!
        .parameters!.filter((p) => p.in === 'query')
        .map((p) => p.name);
      expect(names.sort()).toEqual(['filterLimit', 'filterPage', 'filters']);
    }
    const bulk = operation('post', '/bulkrerun')!.requestBody!.content['application/json'];
    expect(bulk.examples!.sample.value).toMatchObject({ filters: expect.any(Object), batchSize: 2 });
  });

  it('serves the UI and the document where the start-up log line says', async () => {
    const [ui, json] = apiDocsLine(baseUrl).match(/https?:\/\/\S+?(?=[ )]|$)/g)!;
    expect([ui, json]).toEqual([`${baseUrl}/api-docs`, `${baseUrl}/api-docs-json`]);
    expect((await request(ui).get('').expect(200)).text).toContain('swagger-ui');
    expect((await request(json).get('').expect(200)).body).toEqual(doc);
  });

  it('serves the UI', async () => {
    const response = await request(baseUrl).get('/api-docs/').expect(200);
    expect(response.headers['content-type']).toMatch(/^text\/html/);
    expect(response.text).toContain('swagger-ui');
  });
});
