import { isIsoDateTime } from './checks';

describe('isIsoDateTime (startAt)', () => {
  it.each([
    '2030-01-02T03:04:05Z',
    '2030-01-02T03:04Z',
    '2030-01-02T03:04+02:00',
    '2030-01-02T03:04:05.123-0530',
    '2028-02-29T00:00:00Z',
  ])('accepts %s', (value) => expect(isIsoDateTime(value)).toBe(true));
  it.each([
    '2030-02-31T00:00:00Z',
    '2029-02-29T00:00:00Z',
    '2030-01-02T24:00:00Z',
    '2030-01-02T03:60Z',
    '2030-01-02T03:04:05',
    '2030-01-02',
    '2030-01-02T03:04+25:00',
    'tomorrow',
    1767225600000,
    null,
  ])('refuses %j', (value) => expect(isIsoDateTime(value)).toBe(false));
});
