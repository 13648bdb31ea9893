// npm run build: copies the browser libraries the page loads from
// node_modules (versions pinned by package-lock.json) into static/vendor/,
// which the Go binary embeds. The copy is committed, so that a plain
// `go build` gives a complete binary; static's TestVendorMatchesLock fails
// when it differs from what the lock file pins (then run npm ci and this).
import { cpSync, mkdirSync, rmSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const vendor = join(root, 'static', 'vendor');

/** [package dir in node_modules, files or folders to copy, target under vendor/] */
const copies = [
  ['leaflet', ['dist/leaflet.js', 'dist/leaflet.js.map', 'dist/leaflet.css', 'dist/images', 'LICENSE'], 'leaflet'],
];

for (const [pkg, files, target] of copies) {
  const from = join(root, 'node_modules', pkg);
  if (!existsSync(from)) {
    console.error(`node_modules/${pkg} is missing: run npm ci first`);
    process.exit(1);
  }
  const to = join(vendor, target);
  rmSync(to, { recursive: true, force: true });
  mkdirSync(to, { recursive: true });
  for (const f of files) {
    const name = f.split('/').pop() ?? f;
    cpSync(join(from, f), join(to, name), { recursive: true });
  }
  console.log(`vendor: ${pkg} → static/vendor/${target}/`);
}
