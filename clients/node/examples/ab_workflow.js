#!/usr/bin/env node
'use strict';
// Register a model's two versions, A/B test them, record traffic and read the analysis,
// from Node.js against a running control plane:
//
//   neural-mlops serve --listen 127.0.0.1:50051 &
//   node examples/ab_workflow.js grpc://127.0.0.1:50051
//
// Prints a JSON summary on stdout; exits 1 with the server's reason on any error.
const { NeuralMLOpsClient, assignment } = require('../src');

const target = process.argv[2] || process.env.NEURAL_MLOPS_TARGET || 'grpc://127.0.0.1:50051';
const model = process.argv[3] || 'fraud_detector_js';
const USERS = 4000;

// A deterministic "traffic generator": the treatment converts 14% of users, control 8%
// (an effect large enough that 4,000 users detect it under any test id's split).
function outcome(userId, variant) {
  const u = assignment.bucket('outcome', userId);
  return u < (variant === 'treatment' ? 0.14 : 0.08);
}

async function main() {
  const client = new NeuralMLOpsClient(target, { user: 'ml_engineer@company.com' });
  try {
    const versions = [];
    for (const [version, accuracy] of [['v1.0.0', 0.93], ['v2.0.0', 0.96]]) {
      const mv = await client.registerModel({
        name: model, version, framework: 'pytorch', created_by: 'data_scientist@company.com',
        metrics: { accuracy }, tags: ['fraud', 'node'], artifact_filename: 'model.bin',
        description: `registered from Node.js ${process.version}`,
      }, Buffer.from(`weights of ${model} ${version}\n`));
      versions.push({ version: mv.version, stage: mv.stage, sha256: mv.artifact.sha256 });
    }

    const test = await client.createTest({
      name: `${model} v2 vs v1 (node)`,
      description: 'Testing the new version against the current one',
      control_variant: `${model}:v1.0.0`,
      treatment_variant: `${model}:v2.0.0`,
      traffic_split: 0.5,
      strategy: 'TRAFFIC_SPLIT_STRATEGY_HASH_BASED',
      created_by: 'ml_engineer@company.com',
    });
    const started = await client.startTest(test.test_id);

    // The server's assignment and the local one (same contract) agree for every user.
    const weights = started.variants.map((v) => v.weight);
    const names = started.variants.map((v) => v.name);
    let checked = 0;
    for (let i = 0; i < 50; i += 1) {
      const userId = `user${i}`;
      const served = await client.getVariant(test.test_id, userId);
      const local = names[assignment.assign(test.test_id, userId, weights)];
      if (served.variant !== local) {
        throw new Error(`assignment mismatch for ${userId}: server ${served.variant}, local ${local}`);
      }
      checked += 1;
    }

    let recorded = 0;
    let batch = [];
    for (let i = 0; i < USERS; i += 1) {
      const userId = `user${i}`;
      const variant = names[assignment.assign(test.test_id, userId, weights)];
      batch.push({
        variant, unit_id: userId, success: outcome(userId, variant),
        latency: 0.030 + 0.01 * assignment.bucket('latency', userId),
        custom_metrics: { accuracy: variant === 'treatment' ? 0.96 : 0.93 },
      });
      if (batch.length === 500) {
        recorded += Number((await client.recordRequests(test.test_id, batch)).recorded);
        batch = [];
      }
    }
    if (batch.length) recorded += Number((await client.recordRequests(test.test_id, batch)).recorded);

    const analysis = await client.analyzeTest(test.test_id, 0.95);
    const summary = {
      model,
      versions,
      test_id: test.test_id,
      status: started.status,
      assignments_checked: checked,
      recorded,
      statistically_significant: analysis.statistically_significant,
      p_value: analysis.headline.p_value,
      recommendation: analysis.headline.recommendation,
      control_success_rate: analysis.control && analysis.control.success_rate,
      treatment_success_rate: analysis.treatment && analysis.treatment.success_rate,
      relative_improvement: analysis.improvement && analysis.improvement.relative_improvement,
    };
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  } finally {
    client.close();
  }
}

main().catch((err) => {
  process.stderr.write(`error: ${err.status ? `${err.status}: ` : ''}${err.message}`
    + `${err.field ? ` (field ${err.field})` : ''}\n`);
  process.exit(1);
});
