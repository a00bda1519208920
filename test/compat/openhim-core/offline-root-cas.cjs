// Preloaded into OpenHIM core 4.0.5 by the test harness. Core requires `ssl-root-cas/latest`, which,
// when its generated file is missing, downloads Mozilla's CA list at every start and writes it into
// node_modules. The bundled list is what it falls back to anyway; use it directly so that core never
// touches the network or the installed packages during tests.
/* eslint-disable @typescript-eslint/no-require-imports, no-undef -- plain CommonJS preloaded into core's Node process */
'use strict';
const Module = require('node:module');

const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  return resolve.call(this, request === 'ssl-root-cas/latest' ? 'ssl-root-cas' : request, ...rest);
};
