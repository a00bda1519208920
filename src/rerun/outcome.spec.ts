import { cannotRerunError, notFoundError, statusFromHttp } from './outcome';

describe('outcomes', () => {
  it('maps HTTP statuses as OpenHIM core finalises a transaction', () => {
    expect([200, 201, 204, 299].map(statusFromHttp)).toEqual(['Successful', 'Successful', 'Successful', 'Successful']);
    expect([500, 502, 503, 599].map(statusFromHttp)).toEqual(['Failed', 'Failed', 'Failed', 'Failed']);
    expect([100, 301, 400, 404, 409, 600, undefined].map(statusFromHttp)).toEqual(Array(7).fill('Completed'));
  });

  it("uses OpenHIM's error texts", () => {
    expect(notFoundError('abc')).toBe('Transaction abc could not be found');
    expect(cannotRerunError('abc')).toBe(
      "Transaction abc cannot be rerun as there isn't enough information about the request",
    );
  });
});
