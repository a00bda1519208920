import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AppConfig } from '../../src/config/app-config';
import { differencesMarkdown } from '../compat/openhim-core/differences';

// The README is what users read: keep its settings table and differences table true.
const readme = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8');

describe('README', () => {
  it('documents every setting in the settings table', () => {
    const optional = ['MONGODB_URI', 'REDIS_URL', 'TLS_CERT_FILE', 'TLS_KEY_FILE', 'TRUST_PROXY', 'WORKER_HTTP_PORT'];
    const settings = [...Object.keys(new AppConfig()), ...optional];
    const undocumented = settings.filter((name) => !new RegExp(`^\\| [^|]*\`${name}\``, 'm').test(readme));
    expect(undocumented).toEqual([]);
  });

  it('carries the differences table that the differential test pins', () => {
    const section = readme.split('<!-- differences:start -->')[1]?.split('<!-- differences:end -->')[0];
    expect(section?.trim()).toBe(differencesMarkdown().trim());
  });

  it('gives the two quickstart commands', () => {
    expect(readme).toMatch(/^npm start\s+#/m);
    expect(readme).toMatch(/^npm test\s+#/m);
  });
});
