// node build.mjs: bundles src/index.js into ../vendor/codemirror-sqrt.js and gathers the licenses beside it.
import { build } from "esbuild";
import { readFileSync, writeFileSync, readdirSync, existsSync } from "node:fs";
import { join } from "node:path";

const out = new URL("../vendor/", import.meta.url).pathname;
await build({
  entryPoints: ["src/index.js"], bundle: true, minify: true, format: "iife", globalName: "SequrityCodeMirror",
  target: ["es2020"], outfile: join(out, "codemirror-sqrt.js"), legalComments: "none",
  banner: { js: "/* CodeMirror 6 (MIT, see codemirror-sqrt.LICENSE.md); built by static/editor-src */" },
});

const lock = JSON.parse(readFileSync("package-lock.json", "utf8"));
const sections = [];
for (const [path, info] of Object.entries(lock.packages)) {
  if (!path || path.includes("esbuild")) continue;  // esbuild is the build tool, not in the bundle
  const dir = path;
  const license = ["LICENSE", "LICENSE.md", "LICENSE.txt"].map((f) => join(dir, f)).find(existsSync);
  const name = path.replace(/^node_modules\//, "");
  sections.push(`## ${name} ${info.version} (${info.license})\n\n${license ? readFileSync(license, "utf8").trim() : ""}\n`);
}
writeFileSync(join(out, "codemirror-sqrt.LICENSE.md"),
  "# Licenses of the packages bundled in codemirror-sqrt.js\n\n" + sections.join("\n"));
console.log("built", join(out, "codemirror-sqrt.js"), "from", sections.length, "packages");
