import { readFile } from 'node:fs/promises';
import { generate } from 'selfsigned';
import { AppConfig } from '../config/app-config';

export interface TlsMaterial {
  key: string;
  cert: string;
  selfSigned: boolean;
}

/** The configured certificate, or (like OpenHIM's bundled one) a self-signed one for localhost. */
export async function loadTls(config: AppConfig): Promise<TlsMaterial> {
  if (config.TLS_CERT_FILE && config.TLS_KEY_FILE) {
    const [cert, key] = await Promise.all([
      readFile(config.TLS_CERT_FILE, 'utf8'),
      readFile(config.TLS_KEY_FILE, 'utf8'),
    ]);
    return { cert, key, selfSigned: false };
  }
  const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
    keySize: 2048,
    days: 825,
    extensions: [
      { name: 'basicConstraints', cA: false },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
        ],
      },
    ],
  } as Parameters<typeof generate>[1]);
  return { cert: pems.cert, key: pems.private, selfSigned: true };
}
