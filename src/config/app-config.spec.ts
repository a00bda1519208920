import { ConfigError, loadConfig, OPENHIM_DEFAULT_SESSION_KEY } from './app-config';

describe('loadConfig', () => {
  it('gives the documented defaults for an empty environment', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      API_PORT: 8080,
      API_PROTOCOL: 'https',
      RERUN_HOST: 'localhost',
      RERUN_HTTP_PORT: 7786,
      AUTH_TYPES: ['token', 'basic'],
      AUTH_WINDOW_SECONDS: 10,
      TASKS_COLLECTION: 'tasks',
      MAX_TASK_TIDS: 100000,
      LOG_LEVEL: 'info',
      CREATE_DEFAULT_ROOT: true,
    });
    expect(config.MONGODB_URI).toBeUndefined();
    expect(config.REDIS_URL).toBeUndefined();
  });

  it('converts numbers, booleans and lists from strings', () => {
    const config = loadConfig({
      API_PORT: '9443',
      AUTH_TYPES: 'Basic, token',
      CREATE_DEFAULT_ROOT: 'false',
      WORKER_CONCURRENCY: '8',
      MONGODB_URI: 'mongodb://db:27017/openhim',
      REDIS_URL: 'redis://cache:6379',
    });
    expect(config.API_PORT).toBe(9443);
    expect(config.AUTH_TYPES).toEqual(['basic', 'token']);
    expect(config.CREATE_DEFAULT_ROOT).toBe(false);
    expect(config.WORKER_CONCURRENCY).toBe(8);
    expect(config.MONGODB_URI).toBe('mongodb://db:27017/openhim');
  });

  it('treats empty strings as unset', () => {
    expect(loadConfig({ MONGODB_URI: '', REDIS_URL: '', API_PORT: '' }).API_PORT).toBe(8080);
  });

  it('lists every problem in one error', () => {
    let error: unknown;
    try {
      loadConfig({
        API_PORT: 'eighty',
        API_PROTOCOL: 'ftp',
        AUTH_TYPES: 'token,kerberos',
        MONGODB_URI: 'postgres://x',
        LOG_LEVEL: 'loud',
        TLS_CERT_FILE: '/tmp/cert.pem',
      });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    for (const name of [
      'API_PORT',
      'API_PROTOCOL',
      'AUTH_TYPES',
      'MONGODB_URI',
      'LOG_LEVEL',
      'TLS_CERT_FILE and TLS_KEY_FILE',
    ]) {
      expect(problems).toContain(name);
    }
    expect(problems).toContain('"eighty"');
  });

  it("reads OPENHIM_SESSION_KEY as core's key list: comma-separated, a JSON array, or core's default key whole", () => {
    expect(loadConfig({}).OPENHIM_SESSION_KEY).toBeUndefined();
    expect(loadConfig({ OPENHIM_SESSION_KEY: 'new-key, old-key' }).OPENHIM_SESSION_KEY).toEqual(['new-key', 'old-key']);
    expect(loadConfig({ OPENHIM_SESSION_KEY: '["a,b","c"]' }).OPENHIM_SESSION_KEY).toEqual(['a,b', 'c']);
    // Core's default api.sessionKey contains a comma: never split.
    expect(loadConfig({ OPENHIM_SESSION_KEY: OPENHIM_DEFAULT_SESSION_KEY }).OPENHIM_SESSION_KEY).toEqual([
      OPENHIM_DEFAULT_SESSION_KEY,
    ]);
    expect(() => loadConfig({ OPENHIM_SESSION_KEY: ' , ' })).toThrow(/OPENHIM_SESSION_KEY/);
    expect(() => loadConfig({ OPENHIM_SESSION_KEY: '[1]' })).toThrow(/OPENHIM_SESSION_KEY/);
  });

  it('reads CORS_ORIGINS as origins, normalised; anything else is refused', () => {
    expect(loadConfig({}).CORS_ORIGINS).toEqual([]);
    expect(loadConfig({ CORS_ORIGINS: 'https://Console.example.org/, http://localhost:9000' }).CORS_ORIGINS).toEqual([
      'https://console.example.org',
      'http://localhost:9000',
    ]);
    expect(() => loadConfig({ CORS_ORIGINS: 'console.example.org' })).toThrow(/CORS_ORIGINS/);
    expect(() => loadConfig({ CORS_ORIGINS: 'https://console.example.org/path' })).toThrow(/CORS_ORIGINS/);
  });
});
