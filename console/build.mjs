// Copies the console's third-party files from node_modules into the Python package
// (server/console/static/vendor/) and writes vendor/manifest.json: each bundled file with
// its package, the version pinned in package-lock.json and its sha256, so a test can tell
// the committed files are those of the lockfile. Run: npm ci && npm run build
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const vendor = join(here, "..", "server", "console", "static", "vendor");

// package -> files to ship (relative to the package folder)
const BUNDLE = {
  uplot: ["dist/uPlot.esm.js", "dist/uPlot.min.css", "LICENSE"],
};

const lock = JSON.parse(readFileSync(join(here, "package-lock.json"), "utf8"));
const manifest = { generated_by: "console/build.mjs", packages: {} };
rmSync(vendor, { recursive: true, force: true });
for (const [name, files] of Object.entries(BUNDLE)) {
  const locked = lock.packages[`node_modules/${name}`];
  const installed = JSON.parse(
    readFileSync(join(here, "node_modules", name, "package.json"), "utf8"));
  if (!locked || locked.version !== installed.version) {
    throw new Error(`${name}: node_modules has ${installed.version}, the lockfile ` +
      `${locked && locked.version}; run npm ci`);
  }
  const entry = { version: locked.version, integrity: locked.integrity, files: {} };
  for (const file of files) {
    const target = join(name, file.split("/").pop());
    mkdirSync(join(vendor, name), { recursive: true });
    copyFileSync(join(here, "node_modules", name, file), join(vendor, target));
    const digest = createHash("sha256").update(readFileSync(join(vendor, target))).digest("hex");
    entry.files[target] = { from: file, sha256: digest };
  }
  manifest.packages[name] = entry;
}
writeFileSync(join(vendor, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
console.log(`bundled ${Object.keys(BUNDLE).join(", ")} into ${vendor}`);
