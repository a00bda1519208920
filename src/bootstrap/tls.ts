import { createPrivateKey, KeyObject, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { generate } from 'selfsigned';
import { AppConfig } from '../config/app-config';
import { StartupError } from './startup-errors';

export interface TlsMaterial {
  key: string;
  cert: string;
  selfSigned: boolean;
}

/** The configured certificate, or (like OpenHIM's bundled one) a self-signed one for localhost. */
export async function loadTls(config: AppConfig): Promise<TlsMaterial> {
  if (config.TLS_CERT_FILE && config.TLS_KEY_FILE) {
    const cert = await readPem('TLS_CERT_FILE', config.TLS_CERT_FILE);
    const key = await readPem('TLS_KEY_FILE', config.TLS_KEY_FILE);
    checkPair(config.TLS_CERT_FILE, cert, config.TLS_KEY_FILE, key);
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

const WHAT_TO_DO =
  'Set TLS_CERT_FILE and TLS_KEY_FILE to a readable PEM certificate and its key, or unset both to serve a generated self-signed certificate.';

async function readPem(setting: string, file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EACCES'
          ? 'permission denied'
          : code === 'EISDIR'
            ? 'it is a directory'
            : (error as Error).message;
    throw new StartupError(`Cannot read ${setting} ${file}: ${why}. ${WHAT_TO_DO}`, { cause: error });
  }
}

/** A certificate and key that cannot serve HTTPS fail here, with the file named, not deep in the TLS stack. */
function checkPair(certFile: string, cert: string, keyFile: string, key: string): void {
  let certificate: X509Certificate;
  let privateKey: KeyObject;
  try {
    certificate = new X509Certificate(cert);
  } catch (error) {
    throw new StartupError(`TLS_CERT_FILE ${certFile} is not a PEM certificate. ${WHAT_TO_DO}`, { cause: error });
  }
  try {
    privateKey = createPrivateKey(key);
  } catch (error) {
    throw new StartupError(`TLS_KEY_FILE ${keyFile} is not a PEM private key (or it is encrypted). ${WHAT_TO_DO}`, {
      cause: error,
    });
  }
  if (!certificate.checkPrivateKey(privateKey)) {
    throw new StartupError(
      `TLS_KEY_FILE ${keyFile} is not the private key of the certificate in TLS_CERT_FILE ${certFile}. ${WHAT_TO_DO}`,
    );
  }
}
