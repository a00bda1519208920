import { AppConfig, ConfigError, loadConfig } from '../../config/app-config';
import { refusal, smtpOptions } from './email-notifications.service';

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error('loadConfig accepted it');
}

describe('the e-mail settings', () => {
  it('are off by default, in core shapes when set', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({ SMTP_PORT: 587, SMTP_SECURE: false, HIM_INSTANCE: 'openhim' });
    expect(config.SMTP_HOST).toBeUndefined();
    expect(config.CONSOLE_URL).toBeUndefined();

    const set = loadConfig({
      SMTP_HOST: 'smtp.example.org',
      SMTP_PORT: '465',
      SMTP_SECURE: 'true',
      SMTP_USER: 'openhim',
      SMTP_PASS: 'secret',
      EMAIL_FROM: 'OpenHIM <openhim@example.org>',
      HIM_INSTANCE: 'him.example.org',
      CONSOLE_URL: 'https://console.example.org/',
    });
    expect(set).toMatchObject({
      EMAIL_FROM: 'OpenHIM <openhim@example.org>',
      CONSOLE_URL: 'https://console.example.org',
    });
    expect(smtpOptions(set)).toMatchObject({
      host: 'smtp.example.org',
      port: 465,
      secure: true,
      auth: { user: 'openhim', pass: 'secret' },
    });
    expect(smtpOptions(loadConfig({ SMTP_HOST: '127.0.0.1', EMAIL_FROM: 'a@b.org' })).auth).toBeUndefined();
  });

  it('need EMAIL_FROM with SMTP_HOST: a start-up error saying so', () => {
    const problems = problemsOf({ SMTP_HOST: 'smtp.example.org' });
    expect(problems).toEqual([expect.stringMatching(/^EMAIL_FROM must be set when SMTP_HOST is/)]);
    expect(problemsOf({ SMTP_HOST: 'smtp.example.org', EMAIL_FROM: 'openhim' })).toEqual([
      expect.stringMatching(/^EMAIL_FROM must be set when SMTP_HOST is, to the address .*\(got "openhim"\)$/),
    ]);
  });

  it('refuse an SMTP_HOST with a scheme, a bad port or CONSOLE_URL, in one error', () => {
    const problems = problemsOf({
      SMTP_HOST: 'smtp://mail.example.org:25',
      SMTP_PORT: '0',
      SMTP_SECURE: 'maybe',
      EMAIL_FROM: 'openhim@example.org',
      CONSOLE_URL: 'console.example.org',
    });
    expect(problems.map((problem) => problem.split(' ')[0])).toEqual([
      'SMTP_HOST',
      'SMTP_PORT',
      'SMTP_SECURE',
      'CONSOLE_URL',
    ]);
    expect(problems[3]).toMatch(/^CONSOLE_URL must be an http\(s\) URL/);
  });

  it('want SMTP_USER and SMTP_PASS together, never printing the password', () => {
    expect(problemsOf({ SMTP_PASS: 'hunter2' })).toEqual([
      'SMTP_USER and SMTP_PASS must be set together (got undefined)',
    ]);
    expect(problemsOf({ SMTP_USER: 'openhim' })).toEqual([
      'SMTP_PASS and SMTP_USER must be set together (got undefined)',
    ]);
  });

  it('are settings of AppConfig (documented in the README with the others)', () => {
    expect(Object.keys(new AppConfig())).toEqual(
      expect.arrayContaining([
        'SMTP_HOST',
        'SMTP_PORT',
        'SMTP_SECURE',
        'SMTP_USER',
        'SMTP_PASS',
        'EMAIL_FROM',
        'HIM_INSTANCE',
        'CONSOLE_URL',
      ]),
    );
  });
});

describe('refusal', () => {
  it('skips a recipient the SMTP server refuses for good, fails on anything else', () => {
    expect(
      refusal({ code: 'EENVELOPE', command: 'RCPT TO', responseCode: 550, response: '550 5.1.1 no such user' }),
    ).toBe('refused by the SMTP server: 550 5.1.1 no such user');
    expect(
      refusal({ code: 'EENVELOPE', command: 'RCPT TO', responseCode: 451, response: '451 try later' }),
    ).toBeUndefined();
    expect(refusal({ code: 'EENVELOPE', command: 'RCPT TO', responseCode: 503 })).toBeUndefined();
    expect(refusal({ code: 'EMESSAGE', command: 'DATA', responseCode: 554 })).toBeUndefined();
    expect(refusal({ code: 'ECONNECTION', message: 'connect ECONNREFUSED' })).toBeUndefined();
    expect(refusal({ code: 'EAUTH', command: 'AUTH PLAIN', responseCode: 535 })).toBeUndefined();
  });
});
