import { buildHttpRerun, unescapeHeaderName } from './rerun-request';

const id = { toString: () => '5bb777777bbb66cc5d4444ee' };

describe('buildHttpRerun', () => {
  it('keeps method, path and query, unescapes header names, drops hop-by-hop headers and adds the OpenHIM ones', () => {
    const request = buildHttpRerun(
      {
        _id: id,
        clientID: 'client-1',
        request: {
          method: 'post',
          path: '/fhir/Patient',
          querystring: 'a=1&b=two',
          body: 'héllo',
          headers: {
            'content-type': 'application/json',
            'x\uFF0Edotted': 'yes',
            '\uFF04dollar': 'sign',
            host: 'old-host:5001',
            'Content-Length': '999',
            'transfer-encoding': 'chunked',
            connection: 'close',
            'keep-alive': 'timeout=5',
            upgrade: 'h2c',
            te: 'trailers',
            trailer: 'x',
            'proxy-authorization': 'secret',
            parentid: 'forged',
            'x-list': ['a', 'b'],
            'x-number': 5,
            'x-object': { nested: true },
            'x-bad': 'line\nbreak',
          },
        },
      },
      'task-1',
    );
    expect(request.method).toBe('POST');
    expect(request.path).toBe('/fhir/Patient?a=1&b=two');
    expect(request.body?.toString('utf8')).toBe('héllo');
    expect(request.headers).toEqual({
      'content-type': 'application/json',
      'x.dotted': 'yes',
      $dollar: 'sign',
      'x-list': ['a', 'b'],
      'x-number': '5',
      clientID: 'client-1',
      parentID: '5bb777777bbb66cc5d4444ee',
      taskID: 'task-1',
      'content-length': String(Buffer.byteLength('héllo')),
    });
  });

  it('sends bodies for POST, PUT and PATCH only, and an empty one when none is stored', () => {
    for (const method of ['POST', 'PUT', 'PATCH']) {
      expect(buildHttpRerun({ _id: id, request: { method, path: '/x', body: 'b' } }, 't').body?.toString()).toBe('b');
    }
    for (const method of ['GET', 'DELETE', 'HEAD', 'OPTIONS']) {
      const request = buildHttpRerun({ _id: id, request: { method, path: '/x', body: 'b' } }, 't');
      expect(request.body).toBeUndefined();
      expect(request.headers['content-length']).toBeUndefined();
    }
    const empty = buildHttpRerun({ _id: id, request: { method: 'POST', path: '/x' } }, 't');
    expect(empty.body?.length).toBe(0);
    expect(empty.headers['content-length']).toBe('0');
  });

  it('defaults to GET / and leaves clientID out when the transaction has none', () => {
    const request = buildHttpRerun({ _id: id }, 't');
    expect(request).toEqual({
      method: 'GET',
      path: '/',
      headers: { parentID: id.toString(), taskID: 't' },
      body: undefined,
    });
  });

  it('unescapes every escaped character of a name', () => {
    expect(unescapeHeaderName('a\uFF0Eb\uFF0Ec\uFF04d')).toBe('a.b.c$d');
  });
});
