'use strict';
// Verify an audit export offline: node examples/verify_audit_export.js FILE [PUBLIC_KEY_PEM_FILE]
// Prints the result as JSON; exits 0 when valid, 1 when not.
const fs = require('node:fs');
const { verifyExport } = require('../src/audit');

const [file, keyFile] = process.argv.slice(2);
if (!file) {
  process.stderr.write('usage: verify_audit_export.js FILE [PUBLIC_KEY_PEM_FILE]\n');
  process.exit(2);
}
const publicKeyPem = keyFile ? fs.readFileSync(keyFile, 'utf8') : undefined;
const result = verifyExport(file, { publicKeyPem });
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(result.valid ? 0 : 1);
