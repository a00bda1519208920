import { sessionOriginRefusal } from './session-origin';

describe('sessionOriginRefusal (changes with a session cookie from other sites)', () => {
  const listed = ['https://console.example.org'];
  const post = (headers: Record<string, string>) => ({
    method: 'POST',
    headers: { host: 'rerun.example.org:8080', ...headers },
  });

  it('lets reads, listed origins, its own origin and clients without an origin through', () => {
    expect(
      sessionOriginRefusal({ ...post({ origin: 'https://evil.example' }), method: 'GET' }, listed),
    ).toBeUndefined();
    expect(sessionOriginRefusal(post({ origin: 'HTTPS://Console.example.org/' }), listed)).toBeUndefined();
    expect(sessionOriginRefusal(post({ origin: 'https://rerun.example.org:8080' }), listed)).toBeUndefined();
    expect(sessionOriginRefusal(post({}), listed)).toBeUndefined();
  });

  it('names the refused origin and the CORS_ORIGINS setting that would allow it', () => {
    expect(sessionOriginRefusal(post({ origin: 'https://Evil.example:8443/' }), listed)).toBe(
      'Requests that change tasks with a session cookie are not accepted from origin https://evil.example:8443: ' +
        'it is not in CORS_ORIGINS. If the OpenHIM console is served from there, allow it with ' +
        'CORS_ORIGINS=https://evil.example:8443 (comma-separated with any others) and restart',
    );
  });

  it('never lists the configured origins', () => {
    const refusal = sessionOriginRefusal(post({ origin: 'https://evil.example' }), listed);
    expect(refusal).not.toContain('console.example.org');
  });

  it('echoes nothing but a plain origin, and still says how to allow one', () => {
    const weird = 'https://evil.example/\u0000\n{"injected":true}';
    for (const [headers, from] of [
      [{ origin: 'null' }, 'an opaque origin ("null"), which CORS_ORIGINS cannot list'],
      [{ origin: weird }, 'an origin that is not a plain http(s) origin'],
      [{ origin: `https://${'a'.repeat(300)}.example` }, 'an origin that is not a plain http(s) origin'],
      [{ 'sec-fetch-site': 'cross-site' }, 'another site (no Origin header)'],
    ] as const) {
      expect(sessionOriginRefusal(post(headers), listed)).toBe(
        `Requests that change tasks with a session cookie are not accepted from ${from}. Only this service's own ` +
          'origin and the origins listed in CORS_ORIGINS (e.g. CORS_ORIGINS=https://console.example.org) may send them',
      );
    }
  });
});
