#!/usr/bin/env zx
// Packs bundle/dfss-gpu/: a self-contained folder that runs the tests and the demo on a GPU host with no
// Node.js, npm or network (Linux x86-64, glibc). Run scripts/build.mjs first (make bundle does).
//
//   bundle/dfss-gpu/
//     run                  entry point: ./run test | demo | sanitize <test file> | node <args>
//     node.xz              this machine's node binary, xz-compressed; run unpacks it once into $TMPDIR (or /tmp)
//     package.json         "type": "module" for dist/
//     dist/{src,ffi,test,bench}the compiled JavaScript, without source maps or declarations
//     node_modules/        koffi's JavaScript and its linux-x64 glibc native module, nothing else
//     lib/libdfss.so       where ffi/library-path.ts looks in a bundle
//     cuda/include/dfss.h  the C ABI (for C callers, and the header test)
//
// Fails when the bundle exceeds 60 MiB: it travels with the repository in a 64 MiB allowance.
import { createHash } from 'node:crypto';

import { $, fs, path } from 'zx';

const root = path.resolve(import.meta.dirname, '..');
const bundle = path.join(root, 'bundle', 'dfss-gpu');
const sizeLimit = 60 * 1024 * 1024;
const mib = (bytes) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
$.cwd = root;
$.verbose = false;

const library = path.join(root, 'build', 'cuda', 'lib', 'libdfss.so');
for (const [file, hint] of [
  [path.join(root, 'dist', 'src'), 'run `make` first'],
  [library, 'build it with `make` (needs nvcc)'],
]) {
  if (!(await fs.pathExists(file))) {
    console.error(`pack-gpu: ${path.relative(root, file)} is missing; ${hint}`);
    process.exit(1);
  }
}
if (process.platform !== 'linux' || process.arch !== 'x64') {
  console.error(`pack-gpu: the bundle carries this machine's node binary and must be made on linux-x64, not ${process.platform}-${process.arch}`);
  process.exit(1);
}

await fs.remove(bundle);
await fs.ensureDir(bundle);

const nodeArchive = await compressedNode();
await fs.copy(nodeArchive, path.join(bundle, 'node.xz'));
const nodeId = `${process.version}-${(await sha256(nodeArchive)).slice(0, 12)}`;

await fs.copy(path.join(root, 'package.json'), path.join(bundle, 'package.json'));
for (const part of ['src', 'ffi', 'test', 'bench']) {
  await fs.copy(path.join(root, 'dist', part), path.join(bundle, 'dist', part), {
    filter: (source) => !/\.(map|d\.ts)$/.test(source),
  });
}

// koffi loads its native module from @koromix/koffi-<platform>-<arch> (index.js picks the glibc or musl
// build); of koffi itself only the JavaScript is needed, not its C++ sources and documentation.
const modules = path.join(root, 'node_modules');
const koffi = path.join(modules, 'koffi');
const koffiSkipped = ['doc', 'lib', 'vendor', 'cnoke.cjs'].map((entry) => path.join(koffi, entry));
await fs.copy(koffi, path.join(bundle, 'node_modules', 'koffi'), {
  filter: async (source) =>
    !koffiSkipped.includes(source) &&
    ((await fs.stat(source)).isDirectory() || /\.(js|cjs|json)$|LICENSE/.test(path.basename(source))),
});
await $`find ${path.join(bundle, 'node_modules')} -type d -empty -delete`;
const native = path.join('@koromix', 'koffi-linux-x64');
for (const file of ['package.json', 'index.js', path.join('linux_x64', 'koffi.node')]) {
  await fs.copy(path.join(modules, native, file), path.join(bundle, 'node_modules', native, file));
}

await fs.copy(await fs.realpath(library), path.join(bundle, 'lib', 'libdfss.so'));
await fs.copy(path.join(root, 'cuda', 'include', 'dfss.h'), path.join(bundle, 'cuda', 'include', 'dfss.h'));

const runScript = (await fs.readFile(path.join(root, 'scripts', 'gpu-run.sh'), 'utf8')).replace('@NODE_ID@', nodeId);
await fs.writeFile(path.join(bundle, 'run'), runScript, { mode: 0o755 });

const size = Number((await $`du -sb ${bundle}`).stdout.split('\t')[0]);
console.log(`dfss: ${path.relative(root, bundle)}/ is ${mib(size)} (node.xz ${mib((await fs.stat(nodeArchive)).size)})`);
if (size > sizeLimit) {
  console.error(`pack-gpu: the bundle exceeds ${mib(sizeLimit)}`);
  process.exit(1);
}

/** This machine's node binary, xz -9: compressed once per binary (minutes) and kept in build/node/. */
async function compressedNode() {
  const binary = await fs.realpath(process.execPath);
  const { size, mtimeMs } = await fs.stat(binary);
  const archive = path.join(root, 'build', 'node', `node-${process.version}-${size}-${Math.floor(mtimeMs)}.xz`);
  if (!(await fs.pathExists(archive))) {
    console.log(`dfss: compressing ${binary} (${mib(size)}) with xz -9, once: this takes a few minutes`);
    await fs.ensureDir(path.dirname(archive));
    const partial = `${archive}.partial`;
    await $`xz -9 -c ${binary} > ${partial}`;
    await fs.rename(partial, archive);
  }
  return archive;
}

async function sha256(file) {
  return createHash('sha256').update(await fs.readFile(file)).digest('hex');
}
