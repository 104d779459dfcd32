'use strict';
// Verify the events a control plane returns to QueryEvents, one by one, from the messages
// alone (AUDIT.md): node examples/verify_query_events.js URL [PAGE_SIZE]
// Prints {valid, eventsChecked, firstBadSeq, reason, versions} as JSON; exits 0 when valid.
const { NeuralMLOpsClient, audit } = require('../src/index');

async function main() {
  const [url, pageSize] = process.argv.slice(2);
  const client = new NeuralMLOpsClient(url);
  try {
    const events = await client.queryEvents({}, Number(pageSize) || 1000);
    const result = audit.verifyEvents(events);
    result.versions = [...new Set(events.map((e) => Number(e.hash_version)))].sort();
    process.stdout.write(`${JSON.stringify(result)}\n`);
    process.exitCode = result.valid ? 0 : 1;
  } finally {
    client.close();
  }
}

main().catch((err) => {
  process.stderr.write(`${err.status || ''}: ${err.message}\n`);
  process.exitCode = 2;
});
