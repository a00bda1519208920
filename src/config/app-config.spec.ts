import { ConfigError, loadConfig } from './app-config';

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
});
