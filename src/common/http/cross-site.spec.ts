import { crossSite } from './cross-site';

describe('crossSite (what another site makes a browser send)', () => {
  const req = (headers: Record<string, string>) => ({ headers: { host: 'rerun.example.org:8080', ...headers } });

  it('lets same-origin and non-browser requests through', () => {
    expect(crossSite(req({}))).toBe(false);
    expect(crossSite(req({ origin: 'https://rerun.example.org:8080' }))).toBe(false);
    expect(crossSite(req({ 'sec-fetch-site': 'same-origin' }))).toBe(false);
    expect(crossSite(req({ 'sec-fetch-site': 'none' }))).toBe(false);
  });

  it('refuses other origins', () => {
    expect(crossSite(req({ origin: 'https://evil.example' }))).toBe(true);
    expect(crossSite(req({ origin: 'https://rerun.example.org:9999' }))).toBe(true);
    expect(crossSite(req({ origin: 'null' }))).toBe(true);
    expect(crossSite(req({ origin: 'not a url' }))).toBe(true);
    expect(crossSite(req({ 'sec-fetch-site': 'cross-site' }))).toBe(true);
    expect(crossSite(req({ 'sec-fetch-site': 'same-site' }))).toBe(true);
  });
});
