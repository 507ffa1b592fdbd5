// Builds TypeScript executors into bookhost components: the SDK's types
// generated from the WIT (`jco types`), the sources type-checked (`tsc`),
// each entry bundled into one ES module (esbuild), and made a component by
// ComponentizeJS with every WASI feature disabled, so it imports nothing but
// bookhost's own interfaces. Components whose inputs did not change are
// taken from the cache instead of being built again (ComponentizeJS takes
// seconds per executor).
//
// Usage: node build.mjs --wit DIR --out-dir DIR [--cache-dir DIR] ENTRY.ts...
// A component is named after its entry file: src/create-booking-ts.ts
// becomes OUT/create-booking-ts.wasm.

import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { basename, dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { componentize } from "@bytecodealliance/componentize-js";
import { build } from "esbuild";

const sdk = dirname(fileURLToPath(import.meta.url));

/** A package's folder, looked for the way Node looks, from this folder up: in
 * this repository plugins/sdk-ts/node_modules, in a project made by
 * `bookhost new` the project's node_modules. (Not require.resolve: these
 * packages do not export their package.json.) */
function packageDir(name) {
  for (let dir = sdk; ; dir = dirname(dir)) {
    const candidate = join(dir, "node_modules", name);
    if (existsSync(join(candidate, "package.json"))) return candidate;
    if (dirname(dir) === dir) fail(`the npm package ${name} is not installed (run npm ci)`);
  }
}
// A "pure" component: no WASI at all, only the target world's imports.
const DISABLED = ["random", "stdio", "clocks", "http", "fetch-event"];

function fail(message) {
  console.error(`build.mjs: error: ${message}`);
  process.exit(1);
}

function parseArgs(argv) {
  const args = { entries: [] };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === "--wit" || flag === "--out-dir" || flag === "--cache-dir") {
      if (i + 1 >= argv.length) fail(`${flag} needs a directory`);
      args[flag.slice(2)] = resolve(argv[++i]);
    } else if (flag.startsWith("--")) {
      fail(`unknown option ${flag}`);
    } else {
      args.entries.push(resolve(flag));
    }
  }
  if (!args.wit) fail("--wit DIR is required (the folder of bookhost.wit)");
  if (!args["out-dir"]) fail("--out-dir DIR is required");
  if (args.entries.length === 0) fail("no entry files");
  return args;
}

function filesUnder(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)],
  );
}

/** The SDK's types of the WIT world, as `jco types` generates them. */
function generateTypes(wit) {
  const out = join(sdk, "generated");
  // jco reads the WIT through a sandboxed filesystem rooted at its working
  // directory, so it runs from the WIT folder's parent.
  const jco = join(packageDir("@bytecodealliance/jco"), "dist", "jco.js");
  const run = spawnSync(process.execPath, [jco, "types", basename(wit), "--world-name", "executor", "-o", out, "-q"], {
    cwd: dirname(wit),
    encoding: "utf8",
  });
  if (run.status !== 0) fail(`jco types failed:\n${run.stdout}${run.stderr}`);
}

/** Type-check every entry with the SDK (no output). */
function typeCheck(entries) {
  const config = join(sdk, "generated", "tsconfig.build.json");
  writeFileSync(
    config,
    JSON.stringify({
      extends: join(sdk, "tsconfig.json"),
      compilerOptions: {
        noEmit: true,
        rootDir: "/",
        // The WIT imports, by the names ComponentizeJS links them under.
        paths: {
          "@bookhost/sdk": [join(sdk, "src", "index.ts")],
          "bookhost:executor/availability@0.1.1": [join(sdk, "generated", "interfaces", "bookhost-executor-availability.d.ts")],
          "bookhost:executor/context@0.1.1": [join(sdk, "generated", "interfaces", "bookhost-executor-context.d.ts")],
          "bookhost:executor/transaction@0.1.1": [join(sdk, "generated", "interfaces", "bookhost-executor-transaction.d.ts")],
        },
      },
      files: entries,
    }),
  );
  const tsc = join(packageDir("typescript"), "bin", "tsc");
  const run = spawnSync(process.execPath, [tsc, "-p", config], { encoding: "utf8" });
  if (run.status !== 0) fail(`type errors:\n${run.stdout}${run.stderr}`);
}

async function bundle(entry) {
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    external: ["bookhost:*"],
    alias: { "@bookhost/sdk": join(sdk, "src", "index.ts") },
    logLevel: "silent",
  });
  return result.outputFiles[0].text;
}

function digest(parts) {
  const hash = createHash("sha256");
  for (const part of parts) hash.update(part).update("\0");
  return hash.digest("hex").slice(0, 32);
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  for (const entry of args.entries) if (!existsSync(entry)) fail(`no such entry ${entry}`);
  const started = Date.now();
  generateTypes(args.wit);
  typeCheck(args.entries);
  const witText = filesUnder(args.wit)
    .sort()
    .map((f) => readFileSync(f, "utf8"))
    .join("\0");
  const componentizeVersion = JSON.parse(
    readFileSync(join(packageDir("@bytecodealliance/componentize-js"), "package.json"), "utf8"),
  ).version;
  mkdirSync(args["out-dir"], { recursive: true });
  if (args["cache-dir"]) mkdirSync(args["cache-dir"], { recursive: true });
  // Two at a time: ComponentizeJS runs Wizer and uses a core while it does.
  const queue = [...args.entries];
  const built = [];
  async function worker() {
    for (let entry = queue.shift(); entry; entry = queue.shift()) {
      const name = basename(entry).replace(/\.[cm]?ts$/, "");
      const source = await bundle(entry);
      const key = digest([source, witText, componentizeVersion, DISABLED.join(",")]);
      const cached = args["cache-dir"] && join(args["cache-dir"], `${name}-${key}.wasm`);
      let component;
      let from = "cache";
      if (cached && existsSync(cached)) {
        component = readFileSync(cached);
      } else {
        const t = Date.now();
        ({ component } = await componentize(source, {
          witPath: args.wit,
          worldName: "executor",
          disableFeatures: DISABLED,
        }));
        from = `${((Date.now() - t) / 1000).toFixed(1)} s`;
        if (cached) writeFileSync(cached, component);
      }
      // Renamed into place, so readers of the out dir never see half a file.
      const out = join(args["out-dir"], `${name}.wasm`);
      writeFileSync(`${out}.partial`, component);
      renameSync(`${out}.partial`, out);
      built.push(`${relative(process.cwd(), out)} (${(component.length / 1e6).toFixed(1)} MB, ${from})`);
    }
  }
  await Promise.all([worker(), worker()]);
  for (const line of built.sort()) console.log(`build.mjs: ${line}`);
  console.log(`build.mjs: ${args.entries.length} executor(s) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

main().catch((error) => fail(error?.stack ?? String(error)));
