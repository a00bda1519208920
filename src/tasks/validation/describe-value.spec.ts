import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import { describeValue, IsBatchSize } from './checks';

describe('describeValue (the "got ..." of validation messages)', () => {
  it('shows JSON values as JSON, shortened', () => {
    expect(describeValue('x')).toBe('"x"');
    expect(describeValue(null)).toBe('null');
    expect(describeValue(undefined)).toBe('undefined');
    expect(describeValue({ a: 1 })).toBe('{"a":1}');
    expect(describeValue('y'.repeat(60))).toBe(`"${'y'.repeat(36)}...`);
  });

  it('names Infinity and NaN, which JSON.stringify turns into null', () => {
    expect(describeValue(Infinity)).toBe('Infinity');
    expect(describeValue(-Infinity)).toBe('-Infinity');
    expect(describeValue(NaN)).toBe('NaN');
  });

  it('says "got Infinity" for a batchSize of 1e400 in a JSON body', () => {
    class Body {
      @IsBatchSize()
      batchSize: unknown;
    }
    const body = plainToInstance(Body, JSON.parse('{"batchSize": 1e400}') as object);
    const [error] = validateSync(body);
    expect(Object.values(error.constraints ?? {}).join(' ')).toContain('(got Infinity)');
  });
});
