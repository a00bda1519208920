import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { satisfies } from 'semver';
import { parse } from 'yaml';

// Docker cannot run on the build machine: check the files say what the README promises.
const root = join(__dirname, '..', '..');

describe('docker-compose.yml', () => {
  const compose = parse(readFileSync(join(root, 'docker-compose.yml'), 'utf8'));
  const services = compose.services;

  it('has mongo, redis, api and worker', () => {
    expect(Object.keys(services).sort()).toEqual(['api', 'mongo', 'redis', 'worker']);
  });

  it('keeps MongoDB in a named volume with a healthcheck', () => {
    expect(services.mongo.image).toMatch(/^mongo:/);
    expect(services.mongo.volumes[0]).toMatch(/^mongo-data:/);
    expect(compose.volumes).toHaveProperty('mongo-data');
    expect(services.mongo.healthcheck.test.join(' ')).toContain('ping');
  });

  it("runs MongoDB 4.2 as a replica set, as OpenHIM 8's platform does (8.0 in the override file)", () => {
    expect(services.mongo.image).toBe('mongo:4.2');
    expect(services.mongo.command.join(' ')).toContain('--replSet rs0');
    // The healthcheck initiates the set, and is healthy only on a primary.
    expect(services.mongo.healthcheck.test.join(' ')).toMatch(/rs\.initiate\(\{_id: 'rs0'.*ismaster/);
    const newest = parse(readFileSync(join(root, 'docker-compose.mongodb8.yml'), 'utf8'));
    expect(newest.services.mongo.image).toBe('mongo:8.0');
    expect(newest.services.mongo.healthcheck.test.join(' ')).toMatch(/rs\.initiate\(\{_id: 'rs0'.*isWritablePrimary/);
  });

  it('runs Redis with persistence and without eviction', () => {
    const command = services.redis.command.join(' ');
    expect(command).toContain('--appendonly yes');
    expect(command).toContain('--maxmemory-policy noeviction');
    expect(services.redis.healthcheck.test.join(' ')).toContain('ping');
  });

  it.each(['api', 'worker'])('runs %s from the one image, after healthy dependencies', (name) => {
    const service = services[name];
    expect(service.image).toBe(services.api.image);
    // w=majority: on 4.2 and 4.4 writes are acknowledged by the primary alone otherwise.
    expect(service.environment.MONGODB_URI).toBe('mongodb://mongo:27017/openhim?replicaSet=rs0&w=majority');
    expect(service.environment.REDIS_URL).toBe('redis://redis:6379');
    expect(service.depends_on.mongo.condition).toBe('service_healthy');
    expect(service.depends_on.redis.condition).toBe('service_healthy');
  });

  it('starts each role with its own entry point', () => {
    expect(services.api.command).toEqual(['node', 'dist/main.api.js']);
    expect(services.worker.command).toEqual(['node', 'dist/main.worker.js']);
    expect(services.api.ports[0]).toContain('8080');
    expect(services.worker.ports).toBeUndefined();
  });
});

describe('Dockerfile', () => {
  const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');

  it('builds in one stage and runs production dependencies as a non-root user in another', () => {
    expect(dockerfile.match(/^FROM /gm)).toHaveLength(2);
    expect(dockerfile).toMatch(/npm prune --omit=dev/);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/ARG NODE_IMAGE=node:\d+/);
  });

  it('ships the entry points the compose file runs', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    expect(pkg.scripts.build).toBe('node scripts/build.js');
    expect(readFileSync(join(root, 'scripts', 'build.js'), 'utf8')).toContain("'tsconfig.build.json'");
    // `npm run build` in the image needs the build script and every input it compiles.
    for (const input of ['scripts', 'src', 'packages', 'tsconfig.json', 'tsconfig.build.json'])
      expect(dockerfile).toMatch(new RegExp(`^COPY .*\\b${input.replace('.', '\\.')}\\b`, 'm'));
    expect(dockerfile).toContain('COPY --from=build --chown=node:node /app/dist ./dist');
    // The workspace packages: `npm ci` needs their package.json, the image their build (the link
    // node_modules/@openhim-rerun/mongo-wire points at packages/mongo-wire).
    expect(pkg.workspaces).toEqual(['packages/*']);
    for (const name of readdirSync(join(root, 'packages'))) {
      const npmCi = dockerfile.indexOf('RUN npm ci');
      expect(dockerfile.indexOf(`COPY packages/${name}/package.json`)).toBeGreaterThan(-1);
      expect(dockerfile.indexOf(`COPY packages/${name}/package.json`)).toBeLessThan(npmCi);
      expect(dockerfile).toContain(
        `COPY --from=build --chown=node:node /app/packages/${name}/dist ./packages/${name}/dist`,
      );
      expect(dockerfile).toContain(`/app/packages/${name}/package.json ./packages/${name}/`);
    }
  });

  it("runs a Node version that package.json's engines allow", () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    const major = Number(dockerfile.match(/^ARG NODE_IMAGE=node:(\d+)-/m)?.[1]);
    expect(satisfies(`${major}.99.0`, pkg.engines.node)).toBe(true);
  });
});

describe('package.json', () => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8'));
  const packages = Object.entries(lock.packages as Record<string, { version: string; engines?: { node?: string } }>);

  // `npm ci` warns (EBADENGINE) about any package whose engines exclude the running Node. Every
  // locked package must accept the oldest Node of each line we declare, and the build machines' 20.
  it.each(['20.19.0', '22.13.0', '24.0.0', process.versions.node])(
    'declares engines that every locked package supports: Node %s',
    (version) => {
      expect(satisfies(version, pkg.engines.node)).toBe(true);
      const unsupported = packages
        .filter(([path, entry]) => path && entry.engines?.node && !satisfies(version, entry.engines.node))
        .map(([path, entry]) => `${path.replace(/^.*node_modules\//, '')}@${entry.version} (${entry.engines!.node})`);
      expect(unsupported).toEqual([]);
    },
  );

  it('reviews every dependency install script (npm allowScripts): none is needed', () => {
    const withScripts = packages
      .filter(([path, entry]) => path && (entry as { hasInstallScript?: boolean }).hasInstallScript)
      .map(([path]) => path.replace(/^.*node_modules\//, ''));
    expect(Object.keys(pkg.allowScripts).sort()).toEqual([...new Set(withScripts)].sort());
    expect(Object.values(pkg.allowScripts).every((allowed) => allowed === false)).toBe(true);
  });
});
