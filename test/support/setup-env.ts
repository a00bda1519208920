// Loaded before every test file, before any module.
process.env.TZ = 'UTC';
// The API serves HTTPS with a generated self-signed certificate, as OpenHIM does (clients use curl -k).
process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
process.removeAllListeners('warning');
