import { HttpException } from '@nestjs/common';
import { Types } from 'mongoose';
import { toTransactionQuery } from './transaction-filters';

describe('toTransactionQuery (bulk rerun filters)', () => {
  it('builds the query from the allowed filters', () => {
    const query = toTransactionQuery({
      channelID: '5bb777777bbb66cc5d4444aa',
      clientID: '5bb777777bbb66cc5d4444bb',
      status: 'Failed',
      'request.timestamp': '{"$gte":"2024-05-01T00:00:00Z","$lt":"2024-05-02T00:00:00Z"}',
      'request.method': 'post',
      'request.path': '/fhir/Patient?x=(1)',
      'response.status': '5xx',
    });
    expect(query).toEqual({
      channelID: new Types.ObjectId('5bb777777bbb66cc5d4444aa'),
      clientID: new Types.ObjectId('5bb777777bbb66cc5d4444bb'),
      status: 'Failed',
      'request.timestamp': { $gte: new Date('2024-05-01T00:00:00Z'), $lt: new Date('2024-05-02T00:00:00Z') },
      'request.method': 'POST',
      'request.path': expect.any(RegExp),
      'response.status': { $gte: 500, $lt: 600 },
    });
    const path = query['request.path'] as RegExp;
    expect(path.test('/FHIR/patient?x=(1)&y')).toBe(true);
    expect(path.test('/fhir/PatientX?x=1')).toBe(false);
    expect(toTransactionQuery({ 'response.status': 404 })).toEqual({ 'response.status': 404 });
    expect(toTransactionQuery({ 'response.status': '404' })).toEqual({ 'response.status': 404 });
    expect(toTransactionQuery({})).toEqual({});
  });

  it('treats request.path as literal text, never as a regex', () => {
    const path = toTransactionQuery({ 'request.path': '.*' })['request.path'] as RegExp;
    expect(path.test('/anything')).toBe(false);
    expect(path.test('/a.*b')).toBe(true);
  });

  it('refuses unknown keys, operators and bad values', () => {
    const bad = (filters: unknown) => () => toTransactionQuery(filters);
    expect(bad({ 'request.body': 'x' })).toThrow(/Unknown transaction filter "request.body"/);
    expect(bad({ $where: '1' })).toThrow(HttpException);
    expect(bad({ channelID: { $ne: null } })).toThrow(/channelID must be a 24-character hex id/);
    expect(bad({ status: 'Bogus' })).toThrow(/status must be one of/);
    expect(bad({ 'response.status': '6xx' })).toThrow(/response.status must be a status code/);
    expect(bad({ 'request.method': 'GET /' })).toThrow(/request.method must be an HTTP method/);
    expect(bad([])).toThrow('filters must be a JSON object');
  });
});
